package loadgen_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cdcflow/cdcflow/examples/orders/loadgen"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestLifecycles runs 500 operations against a fresh schema: every kind of
// operation happens, orders only move forward (new → paid → shipped, or
// cancelled), and deleted orders leave no line items behind.
func TestLifecycles(t *testing.T) {
	ctx := context.Background()
	db, err := pgx.Connect(ctx, testenv.PGDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("loadgen_%d", rand.IntN(1_000_000_000))
	if _, err := db.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close(context.Background())
	})
	g, err := loadgen.New(ctx, db, loadgen.Config{Schema: schema, Customers: 10, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		if err := g.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stats := g.Stats()
	for _, kind := range []string{"customer", "rename", "order", "paid", "shipped", "cancelled", "amount", "item", "delete"} {
		if stats[kind] == 0 {
			t.Errorf("no %s operation in 500: %v", kind, stats)
		}
	}
	var customers, orphans int
	var bad []string
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+schema+".customers").Scan(&customers); err != nil || customers != 10 {
		t.Errorf("%d customers (%v), want the 10 of the cap", customers, err)
	}
	rows, _ := db.Query(ctx, "SELECT DISTINCT status FROM "+schema+".orders WHERE status NOT IN ('new', 'paid', 'shipped', 'cancelled')")
	if bad, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(bad) > 0 {
		t.Errorf("statuses %v (%v)", bad, err)
	}
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+schema+".order_items i WHERE NOT EXISTS (SELECT 1 FROM "+schema+".orders o WHERE o.id = i.order_id)").Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("%d line items of deleted orders (%v)", orphans, err)
	}
	t.Logf("500 operations: %v", stats)
}
