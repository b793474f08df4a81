package orders_test

import (
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/topologies"
)

func TestCents(t *testing.T) {
	for _, tc := range []struct {
		amount *big.Rat
		want   int64
	}{
		{big.NewRat(4250, 100), 4250},
		{big.NewRat(1, 1000), 0},
		{big.NewRat(5, 1000), 1}, // half a cent rounds away from zero
		{big.NewRat(-5, 1000), -1},
		{nil, 0},
	} {
		if got := orders.Cents(tc.amount); got != tc.want {
			t.Errorf("Cents(%v) = %d, want %d", tc.amount, got, tc.want)
		}
	}
}

// TestMetricsTopology unit-tests the topology without Kafka: what one order
// contributes, on the day it was created (UTC).
func TestMetricsTopology(t *testing.T) {
	topo := orders.Metrics("shop", "public")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	node := topo.Nodes[0].(*topologies.MetricsNode)
	got, err := node.Measure(change.Row{"id": int64(7), "customer_id": int32(3), "status": "paid",
		"amount": big.NewRat(1999, 100), "created_at": time.Date(2026, 11, 21, 23, 30, 0, 0, time.FixedZone("x", -3600)).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	want := []topologies.Sample{
		{Series: orders.OrdersPerDay, Bucket: "2026-11-22", Value: 1},
		{Series: orders.RevenuePerDay, Bucket: "2026-11-22", Value: 1999},
		{Series: orders.OrdersPerStatus, Bucket: "paid", Value: 1},
		{Series: orders.TopCustomers, Bucket: "3", Value: 1999, Ranked: true},
		{Series: "revenue_cents_per_minute:2026-11-22T00", Bucket: "30", Value: 1999, TTL: 6 * time.Hour},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestEventsTopology unit-tests the event derivation without Kafka.
func TestEventsTopology(t *testing.T) {
	topo := orders.Events("shop", "public", "events.Order")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	node := topo.Nodes[0].(*topologies.EventsNode)
	order := func(status string) orders.Order {
		return orders.Order{ID: 5, CustomerID: 9, Status: status, Amount: big.NewRat(25, 1)}
	}
	for _, tc := range []struct {
		name          string
		op            change.Op
		before, after any
		want          []string
	}{
		{"insert", change.OpCreate, nil, order("new"), []string{"OrderCreated"}},
		{"snapshot read", change.OpRead, nil, order("paid"), []string{"OrderCreated"}},
		{"paid", change.OpUpdate, order("new"), order("paid"), []string{"OrderPaid"}},
		{"shipped", change.OpUpdate, order("paid"), order("shipped"), []string{"OrderShipped"}},
		{"cancelled", change.OpUpdate, order("new"), order("cancelled"), []string{"OrderCancelled"}},
		{"amount only", change.OpUpdate, order("new"), order("new"), nil},
		{"no earlier version", change.OpUpdate, nil, order("paid"), nil},
		{"delete", change.OpDelete, order("paid"), nil, []string{"OrderDeleted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range node.Derive(tc.op, tc.before, tc.after, change.Position{CommitLSN: 1}, change.Source{}) {
				if e.AggregateID != "5" {
					t.Errorf("%s for aggregate %s", e.Type, e.AggregateID)
				}
				got = append(got, e.Type)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}
