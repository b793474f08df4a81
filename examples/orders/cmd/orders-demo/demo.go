package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/jackc/pgx/v5"
)

// createDemoTables creates the example's tables in schema public if they are
// missing.
func createDemoTables(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("PostgreSQL unreachable: %v; check --pg-dsn and that PostgreSQL is running", err)
	}
	defer conn.Close(context.Background())
	for _, stmt := range []string{orders.CreateTable("public"), orders.CreateCustomersTable("public"), orders.CreateOrderItemsTable("public")} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create demo table: %w", err)
		}
	}
	return nil
}

// writeDemo commits a few customers, orders and line items, renames a
// customer and moves an order from new to paid to shipped, so that every
// sink's updates show up in the log. api is the query API's base URL, "" if
// none is served.
func writeDemo(ctx context.Context, dsn, api string, log *slog.Logger) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer conn.Close(context.Background())
	// commit runs one statement and returns the ids it returns, then waits a
	// moment so that the sinks' updates follow it in the log.
	commit := func(sql string) ([]int64, error) {
		log.Info("demo: committing", "sql", sql)
		rows, _ := conn.Query(ctx, sql)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", sql, err)
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return ids, nil
	}
	var customers, ids []int64
	if customers, err = commit("INSERT INTO public.customers (name, segment) VALUES ('Ada', 'retail'), ('Grace', 'business') RETURNING id"); err != nil {
		return err
	}
	ada, grace := customers[0], customers[1]
	if ids, err = commit(fmt.Sprintf("INSERT INTO public.orders (customer_id, amount) VALUES (%d, 42.50), (%d, 10.00) RETURNING id", ada, grace)); err != nil {
		return err
	}
	first, second := ids[0], ids[1]
	steps := []string{
		fmt.Sprintf("INSERT INTO public.order_items (order_id, product, quantity, unit_price) VALUES (%d, 'notebook', 3, 12.50), (%d, 'pen', 2, 2.50), (%d, 'ink', 1, 10.00)", first, first, second),
		fmt.Sprintf("UPDATE public.customers SET name = 'Ada Lovelace' WHERE id = %d", ada),
		fmt.Sprintf("UPDATE public.orders SET status = 'paid' WHERE id = %d", first),
		fmt.Sprintf("UPDATE public.orders SET status = 'shipped' WHERE id = %d", first),
		fmt.Sprintf("UPDATE public.orders SET amount = 15.00 WHERE id = %d", second),
		fmt.Sprintf("WITH items AS (DELETE FROM public.order_items WHERE order_id = %d) DELETE FROM public.orders WHERE id = %d", second, second),
	}
	for _, s := range steps {
		if _, err := commit(s); err != nil {
			return err
		}
	}
	attrs := []any{"order", first, "deleted_order", second, "customer", ada}
	if api != "" {
		attrs = append(attrs, "summary", api+"/order-summaries/"+fmt.Sprint(first))
	}
	log.Info("demo: done; commit more rows to public.orders, public.customers and public.order_items and watch them move (Ctrl-C to stop)", attrs...)
	return nil
}
