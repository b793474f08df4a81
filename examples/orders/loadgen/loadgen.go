// Package loadgen commits realistic order lifecycles to the orders example's
// tables (orders, customers, order_items of one schema), at a steady rate,
// against any PostgreSQL database that has them: customers sign up and now
// and then change their name; orders are placed with a few line items, paid,
// shipped, or cancelled, their amount changed while new; old finished orders
// are deleted with their items. Each operation is one source transaction.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"
)

// Config configures a [Generator]. The zero value is usable.
type Config struct {
	// Schema holds the tables. Default "public".
	Schema string
	// Rate is how many operations a second. Default 5.
	Rate float64
	// Customers caps the customer base; new orders go to existing customers
	// once it is reached. Default 50.
	Customers int
	// Seed makes the operations repeatable; 0 draws one.
	Seed uint64
	// Logger receives a line per operation at debug level, and a summary
	// every minute at info level. Default: discard.
	Logger *slog.Logger
}

// Stats counts the operations committed, by kind.
type Stats map[string]int64

// Generator commits the operations.
type Generator struct {
	cfg   Config
	conn  *pgx.Conn
	rng   *rand.Rand
	stats Stats
	// what the generator knows of the rows it made, to move them along
	customers []int64
	open      map[int64]string // order id → status, for orders not deleted
}

// New returns a generator over conn. It creates the tables if they are
// missing.
func New(ctx context.Context, conn *pgx.Conn, cfg Config) (*Generator, error) {
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 5
	}
	if cfg.Customers <= 0 {
		cfg.Customers = 50
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, stmt := range []string{orders.CreateTable(cfg.Schema), orders.CreateCustomersTable(cfg.Schema), orders.CreateOrderItemsTable(cfg.Schema)} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create the orders tables in schema %s: %w", cfg.Schema, err)
		}
	}
	return &Generator{cfg: cfg, conn: conn, rng: rand.New(rand.NewPCG(cfg.Seed, 1)), stats: Stats{}, open: map[int64]string{}}, nil
}

// Run commits operations at the configured rate until ctx ends (nil) or
// one fails.
func (g *Generator) Run(ctx context.Context) error {
	limit := rate.NewLimiter(rate.Limit(g.cfg.Rate), 1)
	report := time.NewTicker(time.Minute)
	defer report.Stop()
	for {
		if err := limit.Wait(ctx); err != nil {
			return nil // ctx ended
		}
		if err := g.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-report.C:
			g.cfg.Logger.Info("load generator", "operations", g.stats)
		default:
		}
	}
}

// Stats returns the operations committed so far.
func (g *Generator) Stats() Stats {
	out := Stats{}
	for k, v := range g.stats {
		out[k] = v
	}
	return out
}

var (
	names    = []string{"Ada", "Grace", "Linus", "Barbara", "Edsger", "Margaret", "Alan", "Frances", "Ken", "Radia"}
	segments = []string{"retail", "retail", "retail", "business", "vip"}
	products = []string{"notebook", "pen", "ink", "desk lamp", "stapler", "chair", "monitor", "cable"}
)

// Step commits one operation, chosen at random among those the rows allow.
func (g *Generator) Step(ctx context.Context) error {
	r := g.rng
	byStatus := func(status string) (int64, bool) {
		var ids []int64
		for id, s := range g.open {
			if s == status {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return 0, false
		}
		return ids[r.IntN(len(ids))], true
	}
	n := r.IntN(100)
	switch {
	case len(g.customers) == 0 || n < 5 && len(g.customers) < g.cfg.Customers:
		return g.newCustomer(ctx)
	case n < 8:
		return g.exec(ctx, "rename", "UPDATE "+g.cfg.Schema+".customers SET name = $2 WHERE id = $1",
			g.customers[r.IntN(len(g.customers))], names[r.IntN(len(names))]+" "+string(rune('A'+r.IntN(26)))+".")
	case n < 40:
		return g.placeOrder(ctx)
	case n < 60:
		if id, ok := byStatus("new"); ok {
			return g.move(ctx, id, "paid")
		}
	case n < 75:
		if id, ok := byStatus("paid"); ok {
			return g.move(ctx, id, "shipped")
		}
	case n < 80:
		if id, ok := byStatus([]string{"new", "paid"}[r.IntN(2)]); ok {
			return g.move(ctx, id, "cancelled")
		}
	case n < 85:
		if id, ok := byStatus("new"); ok {
			return g.exec(ctx, "amount", "UPDATE "+g.cfg.Schema+".orders SET amount = $2::numeric / 100 WHERE id = $1", id, 500+r.IntN(50_000))
		}
	case n < 95:
		if id, ok := byStatus("new"); ok {
			return g.exec(ctx, "item", "INSERT INTO "+g.cfg.Schema+".order_items (order_id, product, quantity, unit_price) VALUES ($1, $2, $3, $4::numeric / 100)",
				id, products[r.IntN(len(products))], 1+r.IntN(4), 100+r.IntN(10_000))
		}
	default:
		for _, status := range []string{"shipped", "cancelled"} {
			if id, ok := byStatus(status); ok {
				return g.deleteOrder(ctx, id)
			}
		}
	}
	return g.placeOrder(ctx) // what was asked for has no row to act on yet
}

func (g *Generator) newCustomer(ctx context.Context) error {
	var id int64
	err := g.conn.QueryRow(ctx, "INSERT INTO "+g.cfg.Schema+".customers (name, segment) VALUES ($1, $2) RETURNING id",
		names[g.rng.IntN(len(names))], segments[g.rng.IntN(len(segments))]).Scan(&id)
	if err != nil {
		return fmt.Errorf("load generator: new customer: %w", err)
	}
	g.customers = append(g.customers, id)
	g.count("customer")
	return nil
}

// placeOrder commits an order with one to three line items, in one
// transaction.
func (g *Generator) placeOrder(ctx context.Context) error {
	if len(g.customers) == 0 {
		return g.newCustomer(ctx)
	}
	r := g.rng
	tx, err := g.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	defer tx.Rollback(context.Background())
	var id int64
	if err := tx.QueryRow(ctx, "INSERT INTO "+g.cfg.Schema+".orders (customer_id, amount) VALUES ($1, $2::numeric / 100) RETURNING id",
		g.customers[r.IntN(len(g.customers))], 500+r.IntN(50_000)).Scan(&id); err != nil {
		return fmt.Errorf("load generator: place order: %w", err)
	}
	for range 1 + r.IntN(3) {
		if _, err := tx.Exec(ctx, "INSERT INTO "+g.cfg.Schema+".order_items (order_id, product, quantity, unit_price) VALUES ($1, $2, $3, $4::numeric / 100)",
			id, products[r.IntN(len(products))], 1+r.IntN(4), 100+r.IntN(10_000)); err != nil {
			return fmt.Errorf("load generator: line item: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("load generator: commit order: %w", err)
	}
	g.open[id] = "new"
	g.count("order")
	return nil
}

func (g *Generator) move(ctx context.Context, id int64, status string) error {
	if err := g.exec(ctx, status, "UPDATE "+g.cfg.Schema+".orders SET status = $2 WHERE id = $1", id, status); err != nil {
		return err
	}
	g.open[id] = status
	return nil
}

func (g *Generator) deleteOrder(ctx context.Context, id int64) error {
	if err := g.exec(ctx, "delete", "WITH items AS (DELETE FROM "+g.cfg.Schema+".order_items WHERE order_id = $1) DELETE FROM "+g.cfg.Schema+".orders WHERE id = $1", id); err != nil {
		return err
	}
	delete(g.open, id)
	return nil
}

func (g *Generator) exec(ctx context.Context, kind, sql string, args ...any) error {
	if _, err := g.conn.Exec(ctx, sql, args...); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("load generator: %s: %w", kind, err)
	}
	g.count(kind)
	return nil
}

func (g *Generator) count(kind string) {
	g.stats[kind]++
	g.cfg.Logger.Debug("load generator", "operation", kind)
}
