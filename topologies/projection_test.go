package topologies_test

import (
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

// The test's events: carts (the aggregates) of customers (the projection
// keys).
type (
	ItemAdded struct {
		CartID   string
		Customer string
		Price    *big.Rat
		Quantity int32 `avro:"qty"`
		Note     *string
		At       time.Time
		Ignored  string `avro:"-"`
	}
	CartEmptied struct {
		CartID   string
		Customer string
	}
)

// spend is a customer's state: what is in each of their carts, in cents.
type spend struct {
	Carts map[string]int64 `json:"carts"`
}

func customerOf(e topologies.RecordedEvent) string {
	switch d := e.Data.(type) {
	case ItemAdded:
		return d.Customer
	case CartEmptied:
		return d.Customer
	}
	return ""
}

func foldSpend(s spend, e topologies.RecordedEvent) spend {
	carts := maps.Clone(s.Carts)
	if carts == nil {
		carts = map[string]int64{}
	}
	switch d := e.Data.(type) {
	case ItemAdded:
		cents, _ := new(big.Rat).Mul(d.Price, big.NewRat(100*int64(d.Quantity), 1)).Float64()
		carts[e.AggregateID] += int64(cents)
	case CartEmptied:
		delete(carts, e.AggregateID)
	}
	return spend{Carts: carts}
}

var cartEvents = topologies.EventTopicOf("events.Cart", ItemAdded{}, CartEmptied{})

func spendProjection() *topologies.ProjectionNode {
	return topologies.Projection("customer-spend", cartEvents, customerOf, foldSpend)
}

func TestProjectionValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		topo    *topologies.Topology
		wantErr []string // nil for valid
	}{
		{"valid", topologies.New("carts", spendProjection()), nil},
		{"two projections of one topic", topologies.New("carts", spendProjection(),
			topologies.Projection("customer-spend-2", cartEvents, customerOf, foldSpend)), nil},
		{"bad name", topologies.New("carts", topologies.Projection("Spend", cartEvents, customerOf, foldSpend)), []string{`projection name "Spend"`}},
		{"empty name", topologies.New("carts", topologies.Projection("", cartEvents, customerOf, foldSpend)), []string{`projection name ""`}},
		{"bad topic", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events/Cart", ItemAdded{}), customerOf, foldSpend)),
			[]string{`event topic "events/Cart" must be dot-separated names`}},
		{"no event types", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart"), customerOf, foldSpend)),
			[]string{"no event types"}},
		{"data not a struct", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", &CartEmptied{}, 7), customerOf, foldSpend)),
			[]string{"event data *topologies_test.CartEmptied is not a struct", "event data int is not a struct"}},
		{"anonymous struct", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", struct{ A int64 }{}), customerOf, foldSpend)),
			[]string{"has no type name"}},
		{"two types of one name", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", ItemAdded{}, cartEvents, otherItemAdded()), customerOf, foldSpend)),
			[]string{"two event data types are named ItemAdded"}},
		{"nil functions", topologies.New("carts", topologies.Projection[spend]("spend", cartEvents, nil, nil)),
			[]string{"key function is nil", "fold function is nil"}},
		{"state not JSON", topologies.New("carts", topologies.Projection("spend", cartEvents, customerOf, func(s chan int, _ topologies.RecordedEvent) chan int { return s })),
			[]string{"state type chan int cannot be stored as JSON"}},
		{"two projections of one name", topologies.New("carts", spendProjection(), spendProjection()),
			[]string{"two projections named customer-spend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.topo.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate passed")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
	// An invalid node neither reads events nor applies them.
	bad := topologies.Projection[spend]("spend", cartEvents, nil, foldSpend)
	if _, _, err := bad.ReadEvent(topologies.RecordedEvent{}, nil); err == nil {
		t.Error("an invalid projection read an event")
	}
	if _, _, err := bad.Apply(nil, topologies.RecordedEvent{}); err == nil {
		t.Error("an invalid projection applied an event")
	}
}

// otherItemAdded returns a value of a second struct type named ItemAdded.
func otherItemAdded() any {
	type ItemAdded struct{ Other int64 }
	return ItemAdded{}
}

func TestProjectionReadEvent(t *testing.T) {
	node := spendProjection()
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	note := "gift"
	meta := topologies.RecordedEvent{Event: topologies.Event{Type: "ItemAdded", AggregateID: "c1"}, ID: "x", Position: change.Position{CommitLSN: 9, Index: 1}, OccurredAt: at}
	for _, tc := range []struct {
		name     string
		typ      string
		fields   map[string]any
		want     any
		wantOK   bool
		wantErr  string
		wantMeta bool
	}{
		{"every field type", "ItemAdded",
			map[string]any{"cart_id": "c1", "customer": "alice", "price": "19.99", "qty": int32(2), "note": "gift", "at": at, "ignored": "x", "unknown": 1.5},
			ItemAdded{CartID: "c1", Customer: "alice", Price: big.NewRat(1999, 100), Quantity: 2, Note: &note, At: at}, true, "", true},
		{"nulls and missing fields", "ItemAdded", map[string]any{"cart_id": "c1", "note": nil},
			ItemAdded{CartID: "c1"}, true, "", true},
		{"another type", "CartEmptied", map[string]any{"cart_id": "c1", "customer": "alice"},
			CartEmptied{CartID: "c1", Customer: "alice"}, true, "", true},
		{"an undeclared type", "CartAbandoned", map[string]any{"cart_id": "c1"}, nil, false, "", true},
		{"a mistyped field", "ItemAdded", map[string]any{"qty": "two"}, nil, true, "event ItemAdded field qty into ItemAdded.Quantity", false},
		{"an overflowing field", "ItemAdded", map[string]any{"qty": int64(1) << 40}, nil, true, "overflows int32", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := meta
			in.Type = tc.typ
			got, ok, err := node.ReadEvent(in, tc.fields)
			if (err != nil) != (tc.wantErr != "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if ok != tc.wantOK || !reflect.DeepEqual(got.Data, tc.want) {
				t.Fatalf("ReadEvent = %#v %v, want %#v %v", got.Data, ok, tc.want, tc.wantOK)
			}
			if got.ID != "x" || got.Position != meta.Position || !got.OccurredAt.Equal(at) || got.AggregateID != "c1" || got.Type != tc.typ {
				t.Fatalf("ReadEvent changed the event's metadata: %+v", got)
			}
		})
	}
}

func added(cart, customer string, lsn change.LSN, price string) topologies.RecordedEvent {
	p, _ := new(big.Rat).SetString(price)
	return topologies.RecordedEvent{
		Event:    topologies.Event{Type: "ItemAdded", AggregateID: cart, Data: ItemAdded{CartID: cart, Customer: customer, Price: p, Quantity: 1}},
		Position: change.Position{CommitLSN: lsn, Index: 1},
	}
}

func emptied(cart, customer string, lsn change.LSN) topologies.RecordedEvent {
	return topologies.RecordedEvent{
		Event:    topologies.Event{Type: "CartEmptied", AggregateID: cart, Data: CartEmptied{CartID: cart, Customer: customer}},
		Position: change.Position{CommitLSN: lsn, Index: 1},
	}
}

// apply folds events into a table value as the processor does, and returns
// it and how many events changed it.
func apply(t *testing.T, node *topologies.ProjectionNode, events []topologies.RecordedEvent) ([]byte, int) {
	t.Helper()
	var value []byte
	n := 0
	for _, e := range events {
		next, applied, err := node.Apply(value, e)
		if err != nil {
			t.Fatal(err)
		}
		if applied {
			value, n = next, n+1
		} else if next != nil {
			t.Fatalf("Apply returned a value for an event it did not apply: %s", next)
		}
	}
	return value, n
}

func stateOf(t *testing.T, node *topologies.ProjectionNode, value []byte) spend {
	t.Helper()
	s, err := node.State(value)
	if err != nil {
		t.Fatal(err)
	}
	return s.(spend)
}

func TestProjectionApplyIsIdempotent(t *testing.T) {
	node := spendProjection()
	a1, a2, a3 := added("c1", "alice", 10, "1.50"), added("c1", "alice", 20, "2.00"), added("c1", "alice", 30, "0.25")
	// A second event the same change derived for the aggregate: same
	// position, another type.
	e3 := emptied("c1", "alice", 30)
	for _, tc := range []struct {
		name        string
		events      []topologies.RecordedEvent
		wantApplied int
		want        map[string]int64
	}{
		{"in order", []topologies.RecordedEvent{a1, a2}, 2, map[string]int64{"c1": 350}},
		{"each delivered twice", []topologies.RecordedEvent{a1, a1, a2, a2}, 2, map[string]int64{"c1": 350}},
		{"replayed from the start", []topologies.RecordedEvent{a1, a2, a1, a2}, 2, map[string]int64{"c1": 350}},
		{"an older event after a newer one", []topologies.RecordedEvent{a2, a1}, 1, map[string]int64{"c1": 200}},
		{"two events of one change", []topologies.RecordedEvent{a1, a3, e3}, 3, map[string]int64{}},
		{"two events of one change, redelivered", []topologies.RecordedEvent{a1, a3, e3, a3, e3, a1}, 3, map[string]int64{}},
		{"a deleted aggregate's events replayed", []topologies.RecordedEvent{a1, e3, a1, a2}, 2, map[string]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, n := apply(t, node, tc.events)
			if n != tc.wantApplied {
				t.Errorf("applied %d events, want %d", n, tc.wantApplied)
			}
			if got := stateOf(t, node, value).Carts; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("carts %v, want %v", got, tc.want)
			}
		})
	}
	// The table value is the state and the last position per aggregate.
	value, _ := apply(t, node, []topologies.RecordedEvent{a1, added("c2", "alice", 15, "3"), a3, e3})
	const want = `{"state":{"carts":{"c2":300}},"applied":{"c1":{"position":"000000000000001E/00000001","types":["CartEmptied","ItemAdded"]},"c2":{"position":"000000000000000F/00000001","types":["ItemAdded"]}}}`
	if string(value) != want {
		t.Fatalf("table value\n%s\nwant\n%s", value, want)
	}
	if _, err := node.State([]byte("{")); err == nil {
		t.Error("State decoded a broken value")
	}
	if _, _, err := node.Apply([]byte(`{"state":{"carts":7}}`), a1); err == nil || !strings.Contains(err.Error(), "decode state as topologies_test.spend") {
		t.Errorf("Apply on a state of another type: %v", err)
	}
}

// TestProjectionInterleavings: events of different aggregates may reach a
// key in any order, and redeliveries anywhere after the original; every
// interleaving must leave the same bytes, as a rebuild must.
func TestProjectionInterleavings(t *testing.T) {
	node := spendProjection()
	carts := [][]topologies.RecordedEvent{
		{added("c1", "alice", 10, "1"), added("c1", "alice", 40, "2"), emptied("c1", "alice", 50)},
		{added("c2", "alice", 20, "5"), added("c2", "alice", 30, "0.5")},
		{added("c3", "alice", 25, "7")},
	}
	var want []byte
	var interleave func(prefix []topologies.RecordedEvent, next []int)
	orders := 0
	interleave = func(prefix []topologies.RecordedEvent, next []int) {
		done := true
		for i, c := range carts {
			if next[i] == len(c) {
				continue
			}
			done = false
			e := c[next[i]]
			n := slices.Clone(next)
			n[i]++
			interleave(append(slices.Clone(prefix), e), n)
			// and the same with a redelivery of the cart's events so far
			interleave(append(slices.Clone(prefix), append([]topologies.RecordedEvent{e}, c[:n[i]]...)...), n)
		}
		if !done {
			return
		}
		orders++
		value, _ := apply(t, node, prefix)
		if want == nil {
			want = value
		} else if string(value) != string(want) {
			t.Fatalf("interleaving %d gives\n%s\nnot\n%s", orders, value, want)
		}
	}
	interleave(nil, make([]int, len(carts)))
	if got := stateOf(t, node, want).Carts; !reflect.DeepEqual(got, map[string]int64{"c2": 550, "c3": 700}) {
		t.Fatalf("carts %v", got)
	}
	if orders < 1000 {
		t.Fatalf("only %d interleavings tried", orders)
	}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

func TestProjectionKey(t *testing.T) {
	node := spendProjection()
	if k, err := node.Key(added("c1", "alice", 1, "1")); err != nil || k != "alice" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	if _, err := node.Key(added("c1", "", 1, "1")); err == nil || !strings.Contains(err.Error(), "empty key for ItemAdded of c1") {
		t.Fatalf("empty key: %v", err)
	}
	if node.Name() != "customer-spend" || node.Input() != "events.Cart" || node.Group("shop") != "shop-customer-spend" {
		t.Fatalf("node %s %s %s", node.Name(), node.Input(), node.Group("shop"))
	}
}

func ExampleProjection() {
	type OrderPaid struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	// Revenue is what each customer paid, by order (cents).
	type Revenue struct {
		Orders map[string]int64 `json:"orders"`
	}
	orderEvents := topologies.EventTopicOf("events.Order", OrderPaid{})
	topo := topologies.New("order-projections",
		topologies.Projection("customer-revenue", orderEvents,
			func(e topologies.RecordedEvent) string {
				return fmt.Sprint(e.Data.(OrderPaid).CustomerID)
			},
			func(r Revenue, e topologies.RecordedEvent) Revenue {
				paid := e.Data.(OrderPaid)
				cents, _ := new(big.Rat).Mul(paid.Amount, big.NewRat(100, 1)).Float64()
				orders := maps.Clone(r.Orders)
				if orders == nil {
					orders = map[string]int64{}
				}
				orders[e.AggregateID] = int64(cents)
				return Revenue{Orders: orders}
			}))
	if err := topo.Validate(); err != nil {
		fmt.Println(err)
	}
	fmt.Print(topo)
	node := topo.Nodes[0].(*topologies.ProjectionNode)
	ev, _, _ := node.ReadEvent(topologies.RecordedEvent{Event: topologies.Event{Type: "OrderPaid", AggregateID: "41"}, Position: change.Position{CommitLSN: 7}},
		map[string]any{"order_id": int64(41), "customer_id": int64(9), "amount": "12.50"})
	key, _ := node.Key(ev)
	value, _, _ := node.Apply(nil, ev)
	fmt.Printf("key %s: %s\n", key, value)
	// Output:
	// topology order-projections
	//   projection customer-revenue of events.Order (OrderPaid) into topologies_test.Revenue per key
	// key 9: {"state":{"orders":{"41":1250}},"applied":{"41":{"position":"0000000000000007/00000000","types":["OrderPaid"]}}}
}
