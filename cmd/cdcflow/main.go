// Command cdcflow captures PostgreSQL changes to Kafka and runs the orders
// example on them.
//
//	cdcflow run      capture of public.orders, public.customers and
//	                 public.order_items, and the example's topologies: order
//	                 metrics in Redis, order events to a Kafka topic, the order
//	                 summaries read model (with an Elasticsearch index when
//	                 --es-url is set), the customer-ltv projection, and the
//	                 query API over the summaries (Kafka and schema registry
//	                 in-process unless configured)
//	cdcflow capture  capture only
//
// Every flag has an environment variable; see cdcflow --help.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

type cli struct {
	LogLevel slog.Level `help:"Log level: debug, info, warn, error." default:"info" env:"CDCFLOW_LOG_LEVEL"`

	Run     runCmd     `cmd:"" help:"Capture the orders example's tables and run its topologies and query API." set:"default_tables=public.orders,public.customers,public.order_items"`
	Capture captureCmd `cmd:"" help:"Capture changes from PostgreSQL to Kafka." set:"default_tables=public.orders"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var c cli
	kctx := kong.Parse(&c, kong.Name("cdcflow"),
		kong.Description("cdcflow: PostgreSQL changes to Kafka, and stream processing on them."),
		kong.BindTo(ctx, (*context.Context)(nil)))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	if err := kctx.Run(log); err != nil {
		fmt.Fprintln(os.Stderr, "cdcflow:", err)
		os.Exit(1)
	}
}
