package topotest_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// StatusChanged is an event: an order's status went From one To another.
type StatusChanged struct {
	OrderID int64
	From    string
	To      string
}

// OrderCreated is an event whose data has no Avro form: a nested struct.
type OrderCreated struct{ Order order }

var statusEvents = topologies.EventTopicOf("events.Order", StatusChanged{}, OrderCreated{})

// seen is what derive saw of one change.
type seen struct {
	op     change.Op
	before *order
}

// transitions derives a StatusChanged event from every change whose Before
// and After differ in status, and records what derive saw.
func transitions(log *[]seen) *topologies.Topology {
	return topologies.New("events", topologies.Events(orders, statusEvents, func(c topologies.Change[order]) []topologies.Event {
		*log = append(*log, seen{c.Op, c.Before})
		var from, to string
		var id int64
		if c.Before != nil {
			from, id = c.Before.Status, c.Before.ID
		}
		if c.After != nil {
			to, id = c.After.Status, c.After.ID
		}
		if from == to {
			return nil
		}
		return []topologies.Event{{AggregateID: strconv.FormatInt(id, 10), Data: StatusChanged{id, from, to}}}
	}))
}

func types(events []topotest.Event) []string {
	var out []string
	for _, e := range events {
		d := e.Data.(StatusChanged)
		out = append(out, e.AggregateID+":"+d.From+"→"+d.To)
	}
	return out
}

// TestEventsSeeThePreviousRowAsBefore: under REPLICA IDENTITY DEFAULT an
// update carries no Before, and derive still sees the row's previous
// version, the one kept from the last change.
func TestEventsSeeThePreviousRowAsBefore(t *testing.T) {
	var log []seen
	h := topotest.New(t, transitions(&log))
	rows := topotest.Table(h, orders)
	o := newOrder(1, 7, "new", 10)
	rows.Insert(o)
	o.Status = "paid"
	rec := rows.Update(o)
	if rec.Event.Before != nil {
		t.Fatalf("an update under REPLICA IDENTITY DEFAULT carries Before %v", rec.Event.Before)
	}
	o.Amount.SetInt64(12) // not a transition
	rows.Update(o)
	rows.Delete(order{ID: 1})

	want := []string{"1:→new", "1:new→paid", "1:paid→"}
	if got := types(h.Events()); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if len(log) != 4 || log[3].op != change.OpDelete || log[3].before == nil || log[3].before.Amount.Cmp(o.Amount) != 0 {
		t.Fatalf("the delete saw Before %+v, want the kept row", log[3].before)
	}
}

// TestEventsWithoutAKeptRow: a change to a row the harness never saw is
// derived with the Before the change carries: none for an update under
// REPLICA IDENTITY DEFAULT, the key columns for a delete, the whole row
// under REPLICA IDENTITY FULL.
func TestEventsWithoutAKeptRow(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []topotest.TableOption
		wantUpdate *order
		wantDelete order
	}{
		{"default", nil, nil, order{ID: 2}},
		{"full", []topotest.TableOption{topotest.ReplicaIdentityFull()}, nil, newOrder(2, 8, "paid", 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []seen
			h := topotest.New(t, transitions(&log))
			rows := topotest.Table(h, orders, tc.opts...)
			rows.Update(newOrder(1, 7, "paid", 10)) // first seen in an update: no earlier version anywhere
			// Row 2 was kept by another processor instance: the harness has
			// not seen it, so the delete's Before is all derive gets.
			rows.Delete(newOrder(2, 8, "paid", 3))
			if log[0].before != tc.wantUpdate {
				t.Errorf("the update saw Before %+v", log[0].before)
			}
			if b := log[1].before; b == nil || b.ID != tc.wantDelete.ID || b.Status != tc.wantDelete.Status || b.Customer != tc.wantDelete.Customer {
				t.Errorf("the delete saw Before %+v, want %+v", b, tc.wantDelete)
			}
		})
	}
}

func TestEventsAreDerivedOnce(t *testing.T) {
	var log []seen
	h := topotest.New(t, transitions(&log))
	rows := topotest.Table(h, orders)
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	o := newOrder(5, 7, "new", 10)
	created := rows.Insert(o, topotest.CommittedAt(at))
	o.Status = "paid"
	paid := rows.Update(o, topotest.CommittedAt(at.Add(time.Minute)))
	h.Redeliver(paid, created)
	h.Replay()
	rows.Update(newOrder(5, 7, "cancelled", 10), topotest.At(created.Event.Position)) // older than the row's last change

	events := h.Events()
	if got, want := types(events), []string{"5:→new", "5:new→paid"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	e := events[1]
	if e.Topic != "events.Order" || e.Type != "StatusChanged" || e.Position != paid.Event.Position || !e.OccurredAt.Equal(at.Add(time.Minute)) ||
		e.ID != topologies.EventID(paid.Event.Position, "5", "StatusChanged") {
		t.Fatalf("event %+v", e)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 7, Duplicates: 5}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	if len(log) != 2 {
		t.Fatalf("derive ran %d times, want 2", len(log))
	}
}

// TestEventsDeadLetterWhatCannotBeEmitted: a change whose events cannot
// all be emitted (one cannot be encoded with its Avro schema, is of a type
// the event topic does not declare, or has no aggregate id) goes to the
// dead letters with none of its events, as the processor sets it aside, and
// the node goes on.
func TestEventsDeadLetterWhatCannotBeEmitted(t *testing.T) {
	id := func(o order) string { return strconv.FormatInt(o.ID, 10) }
	good := func(o order) topologies.Event {
		return topologies.Event{AggregateID: id(o), Data: StatusChanged{OrderID: o.ID, To: o.Status}}
	}
	for _, tc := range []struct {
		name string
		bad  func(o order) []topologies.Event // what a change to status "bad" derives
		want string
	}{
		{"an event that cannot be encoded", func(o order) []topologies.Event {
			return []topologies.Event{{AggregateID: id(o), Data: OrderCreated{o}}}
		}, "encode OrderCreated of 1 at 0000000000000001/00000001: event OrderCreated field Order: type topotest_test.order has no Avro form here"},
		{"an event of a type the topic does not declare", func(o order) []topologies.Event {
			return []topologies.Event{{AggregateID: id(o), Data: OrderNoted{o.ID}}}
		}, "the change at 0000000000000001/00000001 of public.orders derived an event of type \"OrderNoted\", which event topic events.Order does not declare (it declares OrderCreated, StatusChanged); derive events of the declared types, or declare the type with EventTopicOf"},
		{"an event without an aggregate id", func(o order) []topologies.Event {
			return []topologies.Event{{Data: StatusChanged{OrderID: o.ID}}}
		}, "the change at 0000000000000001/00000001 of public.orders derived an event of type StatusChanged without an aggregate id"},
		{"a good event, then one that cannot be encoded", func(o order) []topologies.Event {
			return []topologies.Event{good(o), {AggregateID: id(o), Data: OrderCreated{o}}}
		}, "encode OrderCreated of 1"},
		{"a good event, then one of an undeclared type", func(o order) []topologies.Event {
			return []topologies.Event{good(o), {AggregateID: id(o), Data: OrderNoted{o.ID}}}
		}, "derived an event of type \"OrderNoted\", which event topic events.Order does not declare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := topotest.New(t, topologies.New("events", topologies.Events(orders, statusEvents, func(c topologies.Change[order]) []topologies.Event {
				if c.After.Status == "bad" {
					return tc.bad(*c.After)
				}
				return []topologies.Event{good(*c.After)}
			})))
			rows := topotest.Table(h, orders)
			bad := rows.Insert(newOrder(1, 7, "bad", 10))
			rows.Insert(newOrder(2, 7, "new", 10))

			dead := h.DeadLetters()
			if len(dead) != 1 || dead[0].Record.Event.Position != bad.Event.Position || !strings.Contains(dead[0].Err.Error(), tc.want) {
				t.Fatalf("dead letters %+v, want the bad change's, with %q", dead, tc.want)
			}
			if got, want := types(h.Events()), []string{"2:→new"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			if got, want := h.Stats(), (topotest.Stats{Changes: 2, DeadLetters: 1}); got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
		})
	}
}

// TestEventsDeadLetterARowThatDoesNotDecode: a change whose row does not
// fit the row type goes to the dead letters; the row's kept version stays
// the one before it.
func TestEventsDeadLetterARowThatDoesNotDecode(t *testing.T) {
	var log []seen
	h := topotest.New(t, transitions(&log))
	rows := topotest.Table(h, orders)
	o := newOrder(1, 7, "new", 10)
	rec := rows.Insert(o)
	rec.Event.After["note"] = change.Unavailable{} // an unchanged TOASTed value
	rec.Event.After["status"] = "lost"
	rec.Event.Position.Index++
	h.Redeliver(rec)
	dead := h.DeadLetters()
	if len(dead) != 1 || dead[0].Record.Event.Position != rec.Event.Position ||
		!strings.Contains(dead[0].Err.Error(), "decode change at 0000000000000001/00000002 of public.orders: column note: the source did not send its value") {
		t.Fatalf("dead letters %+v", dead)
	}
	o.Status = "paid"
	rows.Update(o)
	if got, want := types(h.Events()), []string{"1:→new", "1:new→paid"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 3, DeadLetters: 1}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}
