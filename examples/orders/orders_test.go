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
	order := func(status string, amount int64) orders.Order {
		return orders.Order{ID: 5, CustomerID: 9, Status: status, Amount: big.NewRat(amount, 1)}
	}
	later := order("new", 25)
	later.CreatedAt = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		op            change.Op
		before, after any
		want          []string
		wantData      any // of the last event, when set
	}{
		{"insert", change.OpCreate, nil, order("new", 25), []string{"OrderCreated"}, nil},
		{"snapshot read", change.OpRead, nil, order("paid", 25), []string{"OrderCreated"}, nil},
		{"paid", change.OpUpdate, order("new", 25), order("paid", 25), []string{"OrderPaid"}, nil},
		{"paid with a new amount", change.OpUpdate, order("new", 25), order("paid", 30), []string{"OrderPaid"},
			orders.OrderPaid{OrderID: 5, CustomerID: 9, Amount: big.NewRat(30, 1)}},
		{"shipped", change.OpUpdate, order("paid", 25), order("shipped", 25), []string{"OrderShipped"},
			orders.OrderShipped{OrderID: 5, CustomerID: 9, Amount: big.NewRat(25, 1)}},
		{"cancelled", change.OpUpdate, order("new", 25), order("cancelled", 25), []string{"OrderCancelled"}, nil},
		{"amount only", change.OpUpdate, order("paid", 25), order("paid", 40), []string{"OrderAmountChanged"},
			orders.OrderAmountChanged{OrderID: 5, CustomerID: 9, Amount: big.NewRat(40, 1)}},
		{"another status, a new amount", change.OpUpdate, order("new", 25), order("on-hold", 40), []string{"OrderAmountChanged"}, nil},
		{"another status", change.OpUpdate, order("new", 25), order("on-hold", 25), nil, nil},
		{"neither status nor amount", change.OpUpdate, order("new", 25), later, nil, nil},
		{"no earlier version", change.OpUpdate, nil, order("paid", 25), nil, nil},
		{"delete", change.OpDelete, order("paid", 25), nil, []string{"OrderDeleted"},
			orders.OrderDeleted{OrderID: 5, CustomerID: 9, Amount: big.NewRat(25, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var data any
			for _, e := range node.Derive(tc.op, tc.before, tc.after, change.Position{CommitLSN: 1}, change.Source{}) {
				if e.AggregateID != "5" {
					t.Errorf("%s for aggregate %s", e.Type, e.AggregateID)
				}
				got = append(got, e.Type)
				data = e.Data
			}
			if tc.wantData != nil && !reflect.DeepEqual(data, tc.wantData) {
				t.Errorf("data %+v, want %+v", data, tc.wantData)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}
