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

func deriveOrderEvents(c topologies.Change[order]) []topologies.Event {
	switch {
	case c.Op == change.OpCreate || c.Op == change.OpRead:
		o := c.After
		return []topologies.Event{{Type: "OrderPlaced", AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderPlaced{o.ID, o.Customer, o.Status}}}
	case c.Op == change.OpUpdate && c.Before != nil && c.Before.Status != c.After.Status:
		o := c.After
		return []topologies.Event{
			{Type: "OrderStatusSet", AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderStatusSet{o.ID, o.Customer, o.Status}},
			{Type: "OrderNoted", AggregateID: strconv.FormatInt(o.ID, 10), Data: OrderNoted{o.ID}},
		}
	case c.Op == change.OpDelete:
		return []topologies.Event{{Type: "OrderRemoved", AggregateID: strconv.FormatInt(c.Before.ID, 10), Data: OrderRemoved{c.Before.ID, c.Before.Customer}}}
	}
	return nil
}

// customerOf keys an event by its customer; an event without one (0) has
// no key.
func customerOf(e topologies.RecordedEvent) string {
	var id int64
	switch d := e.Data.(type) {
	case OrderPlaced:
		id = d.CustomerID
	case OrderStatusSet:
		id = d.CustomerID
	case OrderRemoved:
		id = d.CustomerID
	}
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

func foldPerCustomer(s perCustomer, e topologies.RecordedEvent) perCustomer {
	orders := maps.Clone(s.Orders)
	if orders == nil {
		orders = map[string]string{}
	}
	switch d := e.Data.(type) {
	case OrderPlaced:
		orders[e.AggregateID] = d.Status
	case OrderStatusSet:
		orders[e.AggregateID] = d.Status
	case OrderRemoved:
		delete(orders, e.AggregateID)
	}
	return perCustomer{Orders: orders}
}

func projectionTopology() *topologies.Topology {
	return topologies.New("per-customer",
		topologies.Events(orders, "events.Order", deriveOrderEvents),
		topologies.Projection("per-customer", topologies.EventTopicOf("events.Order", OrderPlaced{}, OrderStatusSet{}, OrderRemoved{}),
			customerOf, foldPerCustomer))
}

// TestProjectionFoldsTheTopologysEvents: the events the topology's Events
// node derives reach its projection, read back through their Avro form.
func TestProjectionFoldsTheTopologysEvents(t *testing.T) {
	h := topotest.New(t, projectionTopology())
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
	if got := topotest.ProjectionStates[perCustomer](h, "per-customer"); !reflect.DeepEqual(got, want) {
		t.Fatalf("states %+v, want %+v", got, want)
	}
	if got, ok := topotest.ProjectionState[perCustomer](h, "per-customer", "8"); !ok || !reflect.DeepEqual(got, want["8"]) {
		t.Fatalf("state of 8: %+v, %v", got, ok)
	}
	if _, ok := topotest.ProjectionState[perCustomer](h, "per-customer", "9"); ok {
		t.Fatal("a state for a customer without events")
	}
	// Events: three placed, a status set and a note, a removal. The
	// projection counts each once; the note is skipped.
	stats := h.Stats()
	if n := len(h.Events()); n != 6 {
		t.Fatalf("%d events, want 6", n)
	}

	table := h.ProjectionTable("per-customer")
	h.Redeliver(paid)
	h.Replay()
	if got := h.ProjectionTable("per-customer"); !maps.EqualFunc(got, table, func(a, b []byte) bool { return string(a) == string(b) }) {
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
	topo := topologies.New("per-customer", topologies.Projection("per-customer",
		topologies.EventTopicOf("events.Order", OrderPlaced{}, OrderStatusSet{}, OrderRemoved{}), customerOf, foldPerCustomer))
	h := topotest.New(t, topo)
	at := func(lsn change.LSN) change.Position { return change.Position{CommitLSN: lsn, Index: 1} }
	placed := topotest.Event{Topic: "events.Order", Type: "OrderPlaced", AggregateID: "1", Position: at(1), Data: OrderPlaced{1, 7, "new"}}
	set := topotest.Event{Topic: "events.Order", Type: "OrderStatusSet", AggregateID: "1", Position: at(2), Data: OrderStatusSet{1, 7, "paid"}}
	h.PublishEvents(set, placed) // the placed event, older than the status set folded before it, is dropped
	h.PublishEvents(placed, set)
	if got, _ := topotest.ProjectionState[perCustomer](h, "per-customer", "7"); !reflect.DeepEqual(got.Orders, map[string]string{"1": "paid"}) {
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
