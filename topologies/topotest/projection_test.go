package topotest_test

import (
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

type (
	OrderPlaced struct {
		OrderID    int64
		CustomerID int64
		Status     string
	}
	OrderStatusSet struct {
		OrderID    int64
		CustomerID int64
		Status     string
	}
	OrderRemoved struct {
		OrderID    int64
		CustomerID int64
	}
	OrderNoted struct{ OrderID int64 } // not a type the projection reads
)

// perCustomer is what the projection keeps per customer: each order's
// status.
type perCustomer struct {
	Orders map[string]string `json:"orders"`
}

// orderEvents is the event topic of orders: the Events node emits all its
// types, the projection folds three of them.
var orderEvents = topologies.EventTopicOf("events.Order", OrderPlaced{}, OrderStatusSet{}, OrderRemoved{}, OrderNoted{})

func deriveOrderEvents(c topologies.Change[order]) []topologies.Event {
	switch {
	case c.Op == change.OpCreate || c.Op == change.OpRead:
		o := c.After
		return []topologies.Event{{AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderPlaced{o.ID, o.Customer, o.Status}}}
	case c.Op == change.OpUpdate && c.Before != nil && c.Before.Status != c.After.Status:
		o := c.After
		return []topologies.Event{
			{AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderStatusSet{o.ID, o.Customer, o.Status}},
			{AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderNoted{o.ID}},
		}
	case c.Op == change.OpDelete:
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.Before.ID, 10), Data: OrderRemoved{c.Before.ID, c.Before.Customer}}}
	}
	return nil
}

// customerKey keys an event by its customer; an event without one (0) has
// no key.
func customerKey(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// withStatus returns s with the order's status set.
func (s perCustomer) withStatus(order, status string) perCustomer {
	orders := maps.Clone(s.Orders)
	if orders == nil {
		orders = map[string]string{}
	}
	orders[order] = status
	return perCustomer{Orders: orders}
}

// perCustomerProjection keeps each customer's orders' statuses.
func perCustomerProjection() *topologies.ProjectionNode[perCustomer] {
	return perCustomerProjectionWith(topologies.On[perCustomer, OrderRemoved])
}

// perCustomerProjectionWith is perCustomerProjection with OrderRemoved
// handled by the handler removed makes (topologies.On or OnDelete).
func perCustomerProjectionWith(removed func(func(OrderRemoved) string, func(perCustomer, topologies.Recorded[OrderRemoved]) perCustomer) topologies.Handler[perCustomer]) *topologies.ProjectionNode[perCustomer] {
	return topologies.Projection("per-customer", orderEvents,
		topologies.On(func(e OrderPlaced) string { return customerKey(e.CustomerID) },
			func(s perCustomer, e topologies.Recorded[OrderPlaced]) perCustomer {
				return s.withStatus(e.AggregateID, e.Data.Status)
			}),
		topologies.On(func(e OrderStatusSet) string { return customerKey(e.CustomerID) },
			func(s perCustomer, e topologies.Recorded[OrderStatusSet]) perCustomer {
				return s.withStatus(e.AggregateID, e.Data.Status)
			}),
		removed(func(e OrderRemoved) string { return customerKey(e.CustomerID) },
			func(s perCustomer, e topologies.Recorded[OrderRemoved]) perCustomer {
				orders := maps.Clone(s.Orders)
				delete(orders, e.AggregateID)
				return perCustomer{Orders: orders}
			}))
}

// TestProjectionFoldsTheTopologysEvents: the events the topology's Events
// node derives reach its projection, read back through their Avro form.
func TestProjectionFoldsTheTopologysEvents(t *testing.T) {
	p := perCustomerProjection()
	h := topotest.New(t, topologies.New("per-customer", topologies.Events(orders, orderEvents, deriveOrderEvents), p))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10))
	rows.Insert(newOrder(2, 7, "new", 20))
	rows.Insert(newOrder(3, 8, "new", 30))
	paid := rows.Update(newOrder(1, 7, "paid", 10))
	rows.Delete(order{ID: 2}) // the key only: the events node's kept row tells the customer
	want := map[string]perCustomer{
		"7": {Orders: map[string]string{"1": "paid"}},
		"8": {Orders: map[string]string{"3": "new"}},
	}
	if got := topotest.ProjectionStates(h, p); !reflect.DeepEqual(got, want) {
		t.Fatalf("states %+v, want %+v", got, want)
	}
	if got, ok := topotest.ProjectionState(h, p, "8"); !ok || !reflect.DeepEqual(got, want["8"]) {
		t.Fatalf("state of 8: %+v, %v", got, ok)
	}
	if _, ok := topotest.ProjectionState(h, p, "9"); ok {
		t.Fatal("a state for a customer without events")
	}
	// Events: three placed, a status set and a note, a removal. The
	// projection counts each once; the note is skipped.
	stats := h.Stats()
	if n := len(h.Events()); n != 6 {
		t.Fatalf("%d events, want 6", n)
	}

	table := topotest.ProjectionTable(h, p)
	h.Redeliver(paid)
	h.Replay()
	if got := topotest.ProjectionTable(h, p); !maps.EqualFunc(got, table, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("the replay changed the table\n%q\nwas\n%q", got, table)
	}
	// The redelivered change and the five replayed ones are duplicates for
	// the Events node; the projection reads the six events again: five
	// duplicates, and the note skipped again.
	if got := h.Stats(); got.Changes-stats.Changes != 1+5+6 || got.Duplicates-stats.Duplicates != 1+5+5 {
		t.Fatalf("stats %+v, were %+v", got, stats)
	}
}

// TestProjectionOfPublishedEvents: events another topology derives are
// published to the projection; one published again changes nothing, and
// one the key function gives no key goes to the dead letters.
func TestProjectionOfPublishedEvents(t *testing.T) {
	p := perCustomerProjection()
	topo := topologies.New("per-customer", p)
	h := topotest.New(t, topo)
	at := func(lsn change.LSN) change.Position { return change.Position{CommitLSN: lsn, Index: 1} }
	placed := topotest.Event{Topic: "events.Order", Type: "OrderPlaced", AggregateID: "1", Position: at(1), Data: OrderPlaced{1, 7, "new"}}
	set := topotest.Event{Topic: "events.Order", Type: "OrderStatusSet", AggregateID: "1", Position: at(2), Data: OrderStatusSet{1, 7, "paid"}}
	h.PublishEvents(set, placed) // the placed event, older than the status set folded before it, is dropped
	h.PublishEvents(placed, set)
	if got, _ := topotest.ProjectionState(h, p, "7"); !reflect.DeepEqual(got.Orders, map[string]string{"1": "paid"}) {
		t.Fatalf("state %+v", got)
	}
	if got := h.Stats(); got != (topotest.Stats{Changes: 4, Duplicates: 3}) {
		t.Fatalf("stats %+v", got)
	}
	h.PublishEvents(topotest.Event{Topic: "events.Order", Type: "OrderRemoved", AggregateID: "2", Position: at(3), Data: OrderRemoved{OrderID: 2}})
	dead := h.DeadLetters()
	if len(dead) != 1 || dead[0].Event == nil || dead[0].Event.AggregateID != "2" || !strings.Contains(dead[0].Err.Error(), "the key function returned an empty key") {
		t.Fatalf("dead letters %+v", dead)
	}
	if msg := failure(func(t topotest.T) {
		topotest.New(t, topo).PublishEvents(topotest.Event{Topic: "events.Order", Type: "OrderPlaced", Data: map[string]int{}})
	}); !strings.Contains(msg, "data is map[string]int, want a struct") {
		t.Fatalf("publishing an event that cannot be encoded: %q", msg)
	}
}

// TestProjectionAccessorsFailTheTest: reading a projection the topology
// lacks fails the test.
func TestProjectionAccessorsFailTheTest(t *testing.T) {
	topo := func() *topologies.Topology { return topologies.New("per-customer", perCustomerProjection()) }
	other := topologies.Projection("other", orderEvents, topologies.On(func(e OrderPlaced) string { return customerKey(e.CustomerID) },
		func(n int, _ topologies.Recorded[OrderPlaced]) int { return n + 1 }))
	const want = "topology per-customer has no projection other (it has: per-customer)"
	for _, tc := range []struct {
		name string
		f    func(h *topotest.Harness)
	}{
		{"ProjectionState", func(h *topotest.Harness) { topotest.ProjectionState(h, other, "7") }},
		{"ProjectionStates", func(h *topotest.Harness) { topotest.ProjectionStates(h, other) }},
		{"ProjectionTable", func(h *topotest.Harness) { topotest.ProjectionTable(h, other) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := failure(func(t topotest.T) { tc.f(topotest.New(t, topo())) }); !strings.Contains(msg, want) {
				t.Fatalf("failure %q, want it to contain %q", msg, want)
			}
		})
	}
}
