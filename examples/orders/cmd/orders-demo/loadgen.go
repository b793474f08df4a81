package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cdcflow/cdcflow/examples/orders/loadgen"
	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// loadgenCmd runs the load generator alone, against any database.
type loadgenCmd struct {
	PgDSN     string  `name:"pg-dsn" help:"PostgreSQL connection string of the database to write to." default:"postgres://cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable" env:"CDCFLOW_PG_DSN" redact:"url"`
	Schema    string  `help:"Schema of the orders, customers and order_items tables (created if missing)." default:"public" env:"CDCFLOW_SCHEMA"`
	Rate      float64 `help:"Operations a second." default:"5" env:"CDCFLOW_DEMO_RATE"`
	Count     int     `help:"Commit this many operations as fast as the database takes them, then exit (0: run at --rate until stopped)." default:"0"`
	Customers int     `help:"Customer base." default:"50"`
}

func (l *loadgenCmd) Run(ctx context.Context, log *slog.Logger) error {
	if l.Rate <= 0 && l.Count <= 0 {
		return errors.New("--rate must be above 0, or give --count")
	}
	conn, err := pgx.Connect(ctx, l.PgDSN)
	if err != nil {
		return fmt.Errorf("PostgreSQL unreachable: %v; check --pg-dsn and that PostgreSQL is running", err)
	}
	defer conn.Close(context.Background())
	g, err := loadgen.New(ctx, conn, loadgen.Config{Schema: l.Schema, Rate: l.Rate, Customers: l.Customers, Logger: log})
	if err != nil {
		return err
	}
	if l.Count <= 0 {
		log.Info("load generator running; Ctrl-C stops it", "operations_per_second", l.Rate, "schema", l.Schema)
		return g.Run(ctx)
	}
	// A bar on a terminal, nothing otherwise.
	var bar *progressbar.ProgressBar
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.Default(int64(l.Count), "operations")
	}
	for range l.Count {
		if err := g.Step(ctx); err != nil {
			return err
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	log.Info("load generator done", "operations", g.Stats())
	return nil
}
