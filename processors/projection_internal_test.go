package processors

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The events of carts (aggregates) of customers (projection keys).
type (
	ItemAdded struct {
		CartID   string
		Customer string
		Cents    int64
	}
	CartEmptied struct {
		CartID   string
		Customer string
	}
	CartAbandoned struct{ CartID string } // not folded
)

// cartsOf is a customer's state: the cents in each of their carts.
type cartsOf map[string]int64

func spendProjection() *topologies.ProjectionNode[cartsOf] {
	return topologies.Projection("spend", topologies.EventTopicOf("events.Cart", ItemAdded{}, CartEmptied{}, CartAbandoned{}),
		topologies.On(func(e ItemAdded) string { return e.Customer }, func(s cartsOf, e topologies.Recorded[ItemAdded]) cartsOf {
			s = maps.Clone(s)
			if s == nil {
				s = cartsOf{}
			}
			s[e.Data.CartID] += e.Data.Cents
			return s
		}),
		topologies.On(func(e CartEmptied) string { return e.Customer }, func(s cartsOf, e topologies.Recorded[CartEmptied]) cartsOf {
			s = maps.Clone(s)
			delete(s, e.Data.CartID)
			return s
		}))
}

// TestProjectionGroup runs a projection on goka's tester: events of several
// aggregates are re-keyed to their customer and folded there once, however
// often they come; events of other types are skipped, and events it cannot
// read go to the dead-letter topic.
func TestProjectionGroup(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events := serde.NewEncoder(client, "shop").EventEncoder("events.Cart")
	encode := func(lsn change.LSN, aggregate string, data any) []byte {
		t.Helper()
		typ := reflect.TypeOf(data).Name()
		pos := change.Position{CommitLSN: lsn, Index: 1}
		b, err := events.Encode(ctx, &serde.DomainEvent{ID: topologies.EventID(pos, aggregate, typ), Type: typ, AggregateID: aggregate,
			Position: pos, OccurredAt: time.Unix(1, 0), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	node := spendProjection()
	p, tt := onTester(t, topologies.New("carts", node), Config{Decoder: serde.NewDecoder(client)})
	if groups := p.Groups(); !reflect.DeepEqual(groups, []string{"carts-spend"}) {
		t.Fatalf("a topology of projections only runs as groups %v", groups)
	}
	tt.Consume("events.Cart", "", nil) // the topic exists before the processor starts, as it must
	runOnTester(t, p, tt)

	table := ProjectionTable("carts", node)
	if table != "carts-spend-table" {
		t.Fatalf("table %s", table)
	}
	value := func(key string) []byte {
		v, _ := tt.TableValue(table, key).([]byte)
		return v
	}
	log := [][2]any{ // aggregate, record
		{"c1", encode(10, "c1", ItemAdded{CartID: "c1", Customer: "alice", Cents: 150})},
		{"c2", encode(11, "c2", ItemAdded{CartID: "c2", Customer: "bob", Cents: 70})},
		{"c3", encode(12, "c3", ItemAdded{CartID: "c3", Customer: "alice", Cents: 30})},
		{"c1", encode(13, "c1", ItemAdded{CartID: "c1", Customer: "alice", Cents: 50})},
		{"c3", encode(14, "c3", CartEmptied{CartID: "c3", Customer: "alice"})},
		{"c2", encode(15, "c2", CartAbandoned{CartID: "c2"})},
	}
	for _, r := range log {
		tt.Consume("events.Cart", r[0].(string), r[1])
	}
	want := map[string]cartsOf{"alice": {"c1": 200}, "bob": {"c2": 70}}
	got := map[string]cartsOf{}
	for _, k := range tt.GetTableKeys(table) {
		s, err := node.State(value(k))
		if err != nil {
			t.Fatal(err)
		}
		got[k] = s
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	if st := p.Stats(); st != (Stats{Changes: 6}) {
		t.Fatalf("stats %+v, want 6 changes (one of a type without a handler)", st)
	}

	// Every event again: nothing changes.
	alice, bob := value("alice"), value("bob")
	for _, r := range log {
		tt.Consume("events.Cart", r[0].(string), r[1])
	}
	if string(value("alice")) != string(alice) || string(value("bob")) != string(bob) {
		t.Fatalf("redelivery changed the table: %s %s", value("alice"), value("bob"))
	}
	if st := p.Stats(); st != (Stats{Changes: 12, Duplicates: 5}) {
		t.Fatalf("stats %+v, want 12 changes, 5 duplicates", st)
	}

	// Records it cannot read, or key, go to the dead-letter topic.
	dlq := tt.NewQueueTracker("carts.dlq")
	tt.Consume("events.Cart", "c9", []byte("not an event"))
	tt.Consume("events.Cart", "c9", encode(20, "c9", ItemAdded{CartID: "c9", Cents: 1}))
	for _, want := range []string{"decode event", "empty key for ItemAdded of c9"} {
		h, key, _, ok := dlq.NextRawWithHeaders()
		if !ok || key != "c9" || !strings.Contains(string(h[HeaderError]), want) || string(h[HeaderTopic]) != "events.Cart" {
			t.Fatalf("dead letter %q %q %v, want one saying %q", key, h[HeaderError], ok, want)
		}
	}
	if st := p.Stats(); st.DeadLetters != 2 || len(tt.GetTableKeys(table)) != 2 {
		t.Fatalf("stats %+v, keys %v", st, tt.GetTableKeys(table))
	}
}
