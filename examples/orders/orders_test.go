package orders_test

import (
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
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

var table = topologies.TableOf[orders.Order]("shop", "public", "orders")

// TestMetricsTopology unit-tests the metrics topology with the topotest
// harness, without Kafka or Redis: what an order contributes, on the day it
// was created (UTC), and how the metrics move as it changes.
func TestMetricsTopology(t *testing.T) {
	h := topotest.New(t, orders.Metrics("shop", "public"))
	rows := topotest.Table(h, table)
	o := orders.Order{ID: 7, CustomerID: 3, Status: "new", Amount: big.NewRat(1999, 100),
		CreatedAt: time.Date(2026, 11, 21, 23, 30, 0, 0, time.FixedZone("x", -3600))}
	rows.Insert(o)
	minute := orders.MinuteSeries(o.CreatedAt)
	want := map[string]map[string]int64{
		orders.OrdersPerDay:    {"2026-11-22": 1},
		orders.RevenuePerDay:   {"2026-11-22": 1999},
		orders.OrdersPerStatus: {"new": 1},
		orders.TopCustomers:    {"3": 1999},
		minute:                 {"30": 1999},
	}
	if got := h.Metrics(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the insert:\n%v\nwant\n%v", got, want)
	}
	if minute != "revenue_cents_per_minute:2026-11-22T00" || h.TTL(minute) != orders.MinuteSeriesTTL {
		t.Fatalf("minute series %s with TTL %v", minute, h.TTL(minute))
	}

	// A status transition moves the order from one bucket to the other.
	o.Status = "paid"
	paid := rows.Update(o)
	if got := h.Series(orders.OrdersPerStatus); !reflect.DeepEqual(got, map[string]int64{"paid": 1}) {
		t.Fatalf("%s after new → paid: %v", orders.OrdersPerStatus, got)
	}
	// Delivered again, or replayed from the start, it changes nothing.
	before := h.Metrics()
	h.Redeliver(paid)
	h.Replay()
	if got := h.Metrics(); !reflect.DeepEqual(got, before) {
		t.Fatalf("a redelivery moved the metrics:\n%v\nwant\n%v", got, before)
	}

	// A second customer overtakes the first in the ranking.
	rows.Insert(orders.Order{ID: 8, CustomerID: 5, Status: "new", Amount: big.NewRat(25, 1), CreatedAt: o.CreatedAt})
	if got, want := h.Ranking(orders.TopCustomers), []topotest.Rank{{Bucket: "5", Value: 2500}, {Bucket: "3", Value: 1999}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ranking %v, want %v", got, want)
	}

	// Deleting every order empties every series.
	rows.Delete(orders.Order{ID: 7})
	rows.Delete(orders.Order{ID: 8})
	if got := h.Metrics(); len(got) != 0 {
		t.Fatalf("after deleting every order: %v", got)
	}
}

// TestEventsTopology unit-tests the order events with the topotest harness,
// without Kafka: each transition of an order's status is one event, derived
// once however often its change is delivered, even though updates carry no
// before image (REPLICA IDENTITY DEFAULT).
func TestEventsTopology(t *testing.T) {
	h := topotest.New(t, orders.Events("shop", "public", "events.Order"))
	rows := topotest.Table(h, table)
	o := orders.Order{ID: 5, CustomerID: 9, Status: "new", Amount: big.NewRat(25, 1)}
	var types []string
	step := func(name string, rec topotest.Record, want ...string) {
		t.Helper()
		var got []string
		for _, e := range h.Events()[len(types):] {
			if e.AggregateID != "5" || e.Topic != "events.Order" || e.ID != topologies.EventID(rec.Event.Position, "5", e.Type) {
				t.Errorf("%s: event %+v", name, e)
			}
			got = append(got, e.Type)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: events %v, want %v", name, got, want)
		}
		types = append(types, got...)
	}
	step("insert", rows.Insert(o), "OrderCreated")
	o.Status = "paid"
	paid := rows.Update(o)
	step("paid", paid, "OrderPaid")
	h.Redeliver(paid)
	step("paid, delivered again", paid)
	o.Amount = big.NewRat(30, 1)
	step("amount only", rows.Update(o), "OrderAmountChanged")
	o.Status = "shipped"
	step("shipped", rows.Update(o), "OrderShipped")
	h.Replay()
	step("replay", paid)
	step("delete", rows.Delete(orders.Order{ID: 5}), "OrderDeleted")

	if e := h.Events()[1]; !reflect.DeepEqual(e.Data, orders.OrderPaid{OrderID: 5, CustomerID: 9, Amount: big.NewRat(25, 1)}) {
		t.Fatalf("OrderPaid data %+v", e.Data)
	}
	if got := h.Stats(); got.Duplicates != 5 {
		t.Fatalf("stats %+v: the redelivery and the replay of 4 changes are 5 duplicates", got)
	}
}

// TestEventsAfterASnapshot: an order read by a snapshot is created, and its
// later transitions are events; an update to an order the processor never
// saw carries no before image, so it is no transition.
func TestEventsAfterASnapshot(t *testing.T) {
	h := topotest.New(t, orders.Events("shop", "public", "events.Order"))
	rows := topotest.Table(h, table)
	rows.Read(orders.Order{ID: 1, CustomerID: 2, Status: "paid", Amount: big.NewRat(1, 1)})
	rows.Update(orders.Order{ID: 2, CustomerID: 2, Status: "cancelled", Amount: big.NewRat(1, 1)})
	rows.Update(orders.Order{ID: 1, CustomerID: 2, Status: "cancelled", Amount: big.NewRat(1, 1)})
	var got []string
	for _, e := range h.Events() {
		got = append(got, e.Type+" "+e.AggregateID)
	}
	if want := []string{"OrderCreated 1", "OrderCancelled 1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestDeriveEvents checks derive itself: which events each change of an
// order gives, with which data.
func TestDeriveEvents(t *testing.T) {
	topo := orders.Events("shop", "public", "events.Order")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	node := topo.Nodes[0].Engine().(*engine.Events)
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

// TestWindowedMetrics unit-tests the metrics topology's windowed series with
// the topotest harness: an order counts in the 1-minute window and the 12
// hourly windows of its insert's commit time; a later amount change moves
// its revenue there, a delete removes it, but not from a window closed a
// minute (the grace) after its end.
func TestWindowedMetrics(t *testing.T) {
	h := topotest.New(t, orders.Metrics("shop", "public"))
	rows := topotest.Table(h, table)
	at := time.Date(2026, 11, 21, 10, 7, 30, 0, time.UTC)
	o := orders.Order{ID: 7, CustomerID: 3, Status: "new", Amount: big.NewRat(1999, 100), CreatedAt: at}
	rows.Insert(o, topotest.CommittedAt(at))
	rows.Insert(orders.Order{ID: 8, CustomerID: 3, Status: "new", Amount: big.NewRat(1, 1), CreatedAt: at}, topotest.CommittedAt(at.Add(45*time.Second)))
	o.Amount, o.Status = big.NewRat(2500, 100), "paid"
	rows.Update(o, topotest.CommittedAt(at.Add(60*time.Second)))

	minute := func(series string) map[string]int64 {
		out := map[string]int64{}
		for _, w := range h.Windows(series) {
			out[w.Start.Format("15:04")] = w.Value
		}
		return out
	}
	if got, want := minute(orders.RevenuePerMinuteWindow), map[string]int64{"10:07": 2500, "10:08": 100}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", orders.RevenuePerMinuteWindow, got, want)
	}
	if got, want := minute(orders.OrdersPerMinuteWindow), map[string]int64{"10:07": 1, "10:08": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", orders.OrdersPerMinuteWindow, got, want)
	}
	hourly := h.Windows(orders.RevenuePerHourWindow)
	if len(hourly) != 12 || hourly[0].Start.Format("15:04") != "09:10" || hourly[0].Value != 2600 || hourly[11].Start.Format("15:04") != "10:05" {
		t.Errorf("%s = %+v, want 12 windows from 09:10 to 10:05 of 2600", orders.RevenuePerHourWindow, hourly)
	}

	before := h.Windows(orders.RevenuePerHourWindow)
	h.Replay()
	if got := h.Windows(orders.RevenuePerHourWindow); !reflect.DeepEqual(got, before) {
		t.Errorf("the replay moved the windows: %+v", got)
	}
	// Order 8 goes at 10:08:40; order 7 at 10:09:30, when its 10:07 window
	// (ended 10:08, grace 1m) is closed: that window keeps it, its open
	// hourly windows do not.
	rows.Delete(orders.Order{ID: 8}, topotest.CommittedAt(at.Add(70*time.Second)))
	rows.Delete(orders.Order{ID: 7}, topotest.CommittedAt(at.Add(2*time.Minute)))
	if got, want := minute(orders.RevenuePerMinuteWindow), map[string]int64{"10:07": 2500}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the deletes %s = %v, want %v", orders.RevenuePerMinuteWindow, got, want)
	}
	if got := h.Windows(orders.RevenuePerHourWindow); len(got) != 0 {
		t.Errorf("after the deletes %s = %+v, want none", orders.RevenuePerHourWindow, got)
	}
	if st := h.Stats(); st.Late != 1 || st.DeadLetters != 0 {
		t.Errorf("stats %+v: want the last delete late", st)
	}
}
