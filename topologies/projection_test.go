package topologies_test

import (
	"fmt"
	"log"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
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
	// CartAbandoned is a type the cart events topic does not declare.
	CartAbandoned struct{ CartID string }
)

// spend is a customer's state: what is in each of their carts, in cents.
type spend struct {
	Carts map[string]int64 `json:"carts"`
}

func (s spend) carts() map[string]int64 {
	if s.Carts == nil {
		return map[string]int64{}
	}
	return maps.Clone(s.Carts)
}

func addItem(s spend, e topologies.Recorded[ItemAdded]) spend {
	carts := s.carts()
	cents, _ := new(big.Rat).Mul(e.Data.Price, big.NewRat(100*int64(e.Data.Quantity), 1)).Float64()
	carts[e.AggregateID] += int64(cents)
	return spend{Carts: carts}
}

func emptyCart(s spend, e topologies.Recorded[CartEmptied]) spend {
	carts := s.carts()
	delete(carts, e.AggregateID)
	return spend{Carts: carts}
}

var cartEvents = topologies.EventTopicOf("events.Cart", ItemAdded{}, CartEmptied{})

// The handlers of the spend projection: events keyed by customer.
var (
	onItemAdded   = topologies.On(func(e ItemAdded) string { return e.Customer }, addItem)
	onCartEmptied = topologies.On(func(e CartEmptied) string { return e.Customer }, emptyCart)
)

func spendProjection() *topologies.ProjectionNode[spend] {
	return topologies.Projection("customer-spend", cartEvents, onItemAdded, onCartEmptied)
}

// projection returns the runtime form of a projection: its Read, Key and
// Apply are what the processor calls for each event.
func projection[S any](n *topologies.ProjectionNode[S]) *engine.Projection {
	return n.Engine().(*engine.Projection)
}

func TestProjectionValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		topo    *topologies.Topology
		wantErr []string // nil for valid
	}{
		{"valid", topologies.New("carts", spendProjection()), nil},
		{"a handler of some of the topic's types", topologies.New("carts", topologies.Projection("spend", cartEvents, onCartEmptied)), nil},
		{"two projections of one topic", topologies.New("carts", spendProjection(),
			topologies.Projection("customer-spend-2", cartEvents, onItemAdded, onCartEmptied)), nil},
		{"bad name", topologies.New("carts", topologies.Projection("Spend", cartEvents, onItemAdded)), []string{`projection name "Spend"`}},
		{"empty name", topologies.New("carts", topologies.Projection("", cartEvents, onItemAdded)), []string{`projection name ""`}},
		{"bad topic", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events/Cart", ItemAdded{}), onItemAdded)),
			[]string{`event topic "events/Cart" must be dot-separated names`}},
		{"no event types", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart"), onItemAdded)),
			[]string{"no event types"}},
		{"data not a struct", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", &CartEmptied{}, 7), onItemAdded)),
			[]string{"event data *topologies_test.CartEmptied is not a struct", "event data int is not a struct"}},
		{"anonymous struct", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", struct{ A int64 }{}), onItemAdded)),
			[]string{"has no type name"}},
		{"two types of one name", topologies.New("carts", topologies.Projection("spend", topologies.EventTopicOf("events.Cart", ItemAdded{}, CartEmptied{}, otherItemAdded()), onItemAdded)),
			[]string{"two event data types are named ItemAdded"}},
		{"no handlers", topologies.New("carts", topologies.Projection[spend]("spend", cartEvents)),
			[]string{"projection spend of events.Cart: no handlers: declare one with topologies.On for each event type the projection folds"}},
		{"a handler of an undeclared type", topologies.New("carts", topologies.Projection("spend", cartEvents, onItemAdded,
			topologies.On(func(CartAbandoned) string { return "" }, func(s spend, _ topologies.Recorded[CartAbandoned]) spend { return s }))),
			[]string{"a handler of topologies_test.CartAbandoned events, which event topic events.Cart does not declare; add CartAbandoned{} to its EventTopicOf"}},
		{"a handler of another type of a declared name", topologies.New("carts", topologies.Projection("spend", cartEvents, otherItemAddedHandler())),
			[]string{"a handler of topologies_test.ItemAdded events, which event topic events.Cart does not declare"}},
		{"two handlers of one type", topologies.New("carts", topologies.Projection("spend", cartEvents, onItemAdded, onCartEmptied,
			topologies.On(func(e ItemAdded) string { return e.CartID }, addItem))),
			[]string{"two handlers of ItemAdded events"}},
		{"nil key", topologies.New("carts", topologies.Projection("spend", cartEvents, topologies.On[spend, ItemAdded](nil, addItem))),
			[]string{"the key or fold function of ItemAdded events is nil"}},
		{"nil fold", topologies.New("carts", topologies.Projection("spend", cartEvents, topologies.On[spend](func(e CartEmptied) string { return e.Customer }, nil))),
			[]string{"the key or fold function of CartEmptied events is nil"}},
		{"state not JSON", topologies.New("carts", topologies.Projection("spend", cartEvents,
			topologies.On(func(e ItemAdded) string { return e.Customer }, func(s chan int, _ topologies.Recorded[ItemAdded]) chan int { return s }))),
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
	// An invalid node neither reads events, nor applies them, nor reads a
	// state.
	bad := topologies.Projection("spend", cartEvents, topologies.On[spend, ItemAdded](nil, addItem))
	if _, _, err := projection(bad).Read(engine.Recorded{Type: "ItemAdded"}, nil); err == nil {
		t.Error("an invalid projection read an event")
	}
	if _, _, err := projection(bad).Apply(nil, engine.Recorded{Type: "ItemAdded"}); err == nil {
		t.Error("an invalid projection applied an event")
	}
	if _, err := bad.State([]byte(`{"state":{}}`)); err == nil {
		t.Error("an invalid projection read a state")
	}
}

// otherItemAdded returns a value of a second struct type named ItemAdded.
func otherItemAdded() any {
	type ItemAdded struct{ Other int64 }
	return ItemAdded{}
}

// otherItemAddedHandler returns a handler of a second struct type named
// ItemAdded.
func otherItemAddedHandler() topologies.Handler[spend] {
	type ItemAdded struct{ Customer string }
	return topologies.On(func(e ItemAdded) string { return e.Customer }, func(s spend, _ topologies.Recorded[ItemAdded]) spend { return s })
}

// TestProjectionRead: an event read back from its topic (its fields by name,
// as Avro decodes them) becomes a value of its Go type; one of a type the
// projection has no handler for is skipped.
func TestProjectionRead(t *testing.T) {
	node := projection(topologies.Projection("customer-spend", cartEvents, onItemAdded))
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	note := "gift"
	meta := engine.Recorded{AggregateID: "c1", ID: "x", Position: change.Position{CommitLSN: 9, Index: 1}, OccurredAt: at}
	for _, tc := range []struct {
		name    string
		typ     string
		fields  map[string]any
		want    any
		wantOK  bool
		wantErr string
	}{
		{"every field type", "ItemAdded",
			map[string]any{"cart_id": "c1", "customer": "alice", "price": "19.99", "qty": int32(2), "note": "gift", "at": at, "ignored": "x", "unknown": 1.5},
			ItemAdded{CartID: "c1", Customer: "alice", Price: big.NewRat(1999, 100), Quantity: 2, Note: &note, At: at}, true, ""},
		{"nulls and missing fields", "ItemAdded", map[string]any{"cart_id": "c1", "note": nil},
			ItemAdded{CartID: "c1"}, true, ""},
		{"a declared type without a handler", "CartEmptied", map[string]any{"cart_id": "c1", "customer": "alice"}, nil, false, ""},
		{"an undeclared type", "CartAbandoned", map[string]any{"cart_id": "c1"}, nil, false, ""},
		{"a mistyped field", "ItemAdded", map[string]any{"qty": "two"}, nil, true, "projection customer-spend: event ItemAdded field qty into ItemAdded.Quantity"},
		{"an overflowing field", "ItemAdded", map[string]any{"qty": int64(1) << 40}, nil, true, "overflows int32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := meta
			in.Type = tc.typ
			got, ok, err := node.Read(in, tc.fields)
			if (err != nil) != (tc.wantErr != "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if ok != tc.wantOK || !reflect.DeepEqual(got.Data, tc.want) {
				t.Fatalf("Read = %#v %v, want %#v %v", got.Data, ok, tc.want, tc.wantOK)
			}
			if got.ID != "x" || got.Position != meta.Position || !got.OccurredAt.Equal(at) || got.AggregateID != "c1" || got.Type != tc.typ {
				t.Fatalf("Read changed the event's metadata: %+v", got)
			}
		})
	}
}

// TestProjectionHandlersSeeTypedEvents: each event reaches the handler of
// its type, with its data as that type and the metadata the Events node
// gave it.
func TestProjectionHandlersSeeTypedEvents(t *testing.T) {
	type seen struct {
		Added   []topologies.Recorded[ItemAdded]
		Emptied []topologies.Recorded[CartEmptied]
	}
	var got seen
	node := topologies.Projection("seen", cartEvents,
		topologies.On(func(ItemAdded) string { return "k" }, func(n int, e topologies.Recorded[ItemAdded]) int {
			got.Added = append(got.Added, e)
			return n + 1
		}),
		topologies.On(func(CartEmptied) string { return "k" }, func(n int, e topologies.Recorded[CartEmptied]) int {
			got.Emptied = append(got.Emptied, e)
			return n + 10
		}))
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	a, e := added("c1", "alice", 10, "1.50"), emptied("c1", "alice", 20)
	a.ID, a.OccurredAt, e.ID, e.OccurredAt = "id-1", at, "id-2", at.Add(time.Second)
	value, n := apply(t, projection(node), []engine.Recorded{a, e})
	if n != 2 {
		t.Fatalf("applied %d events", n)
	}
	want := seen{
		Added: []topologies.Recorded[ItemAdded]{{Data: a.Data.(ItemAdded), AggregateID: "c1", ID: "id-1", Position: a.Position, OccurredAt: at}},
		Emptied: []topologies.Recorded[CartEmptied]{{Data: CartEmptied{CartID: "c1", Customer: "alice"}, AggregateID: "c1", ID: "id-2",
			Position: e.Position, OccurredAt: at.Add(time.Second)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("handlers saw\n%+v\nwant\n%+v", got, want)
	}
	if s, err := node.State(value); err != nil || s != 11 {
		t.Fatalf("State = %d, %v; want 11", s, err)
	}
}

func added(cart, customer string, lsn change.LSN, price string) engine.Recorded {
	p, _ := new(big.Rat).SetString(price)
	return engine.Recorded{Type: "ItemAdded", AggregateID: cart, Data: ItemAdded{CartID: cart, Customer: customer, Price: p, Quantity: 1},
		Position: change.Position{CommitLSN: lsn, Index: 1}}
}

func emptied(cart, customer string, lsn change.LSN) engine.Recorded {
	return engine.Recorded{Type: "CartEmptied", AggregateID: cart, Data: CartEmptied{CartID: cart, Customer: customer},
		Position: change.Position{CommitLSN: lsn, Index: 1}}
}

// apply folds events into a table value as the processor does, and returns
// it and how many events changed it.
func apply(t *testing.T, node *engine.Projection, events []engine.Recorded) ([]byte, int) {
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

func stateOf(t *testing.T, node *topologies.ProjectionNode[spend], value []byte) spend {
	t.Helper()
	s, err := node.State(value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProjectionApplyIsIdempotent(t *testing.T) {
	node := spendProjection()
	a1, a2, a3 := added("c1", "alice", 10, "1.50"), added("c1", "alice", 20, "2.00"), added("c1", "alice", 30, "0.25")
	// A second event the same change derived for the aggregate: same
	// position, another type.
	e3 := emptied("c1", "alice", 30)
	for _, tc := range []struct {
		name        string
		events      []engine.Recorded
		wantApplied int
		want        map[string]int64
	}{
		{"in order", []engine.Recorded{a1, a2}, 2, map[string]int64{"c1": 350}},
		{"each delivered twice", []engine.Recorded{a1, a1, a2, a2}, 2, map[string]int64{"c1": 350}},
		{"replayed from the start", []engine.Recorded{a1, a2, a1, a2}, 2, map[string]int64{"c1": 350}},
		{"an older event after a newer one", []engine.Recorded{a2, a1}, 1, map[string]int64{"c1": 200}},
		{"two events of one change", []engine.Recorded{a1, a3, e3}, 3, map[string]int64{}},
		{"two events of one change, redelivered", []engine.Recorded{a1, a3, e3, a3, e3, a1}, 3, map[string]int64{}},
		{"a deleted aggregate's events replayed", []engine.Recorded{a1, e3, a1, a2}, 2, map[string]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, n := apply(t, projection(node), tc.events)
			if n != tc.wantApplied {
				t.Errorf("applied %d events, want %d", n, tc.wantApplied)
			}
			if got := stateOf(t, node, value).Carts; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("carts %v, want %v", got, tc.want)
			}
		})
	}
	// The table value is the state and the last position per aggregate.
	value, _ := apply(t, projection(node), []engine.Recorded{a1, added("c2", "alice", 15, "3"), a3, e3})
	const want = `{"state":{"carts":{"c2":300}},"applied":{"c1":{"position":"000000000000001E/00000001","types":["CartEmptied","ItemAdded"]},"c2":{"position":"000000000000000F/00000001","types":["ItemAdded"]}}}`
	if string(value) != want {
		t.Fatalf("table value\n%s\nwant\n%s", value, want)
	}
	if _, err := node.State([]byte("{")); err == nil {
		t.Error("State decoded a broken value")
	}
	if _, _, err := projection(node).Apply([]byte(`{"state":{"carts":7}}`), a1); err == nil || !strings.Contains(err.Error(), "decode state as topologies_test.spend") {
		t.Errorf("Apply on a state of another type: %v", err)
	}
}

// TestProjectionInterleavings: events of different aggregates may reach a
// key in any order, and redeliveries anywhere after the original; every
// interleaving must leave the same bytes, as a rebuild must.
func TestProjectionInterleavings(t *testing.T) {
	node := spendProjection()
	carts := [][]engine.Recorded{
		{added("c1", "alice", 10, "1"), added("c1", "alice", 40, "2"), emptied("c1", "alice", 50)},
		{added("c2", "alice", 20, "5"), added("c2", "alice", 30, "0.5")},
		{added("c3", "alice", 25, "7")},
	}
	var want []byte
	var interleave func(prefix []engine.Recorded, next []int)
	orders := 0
	interleave = func(prefix []engine.Recorded, next []int) {
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
			interleave(append(slices.Clone(prefix), append([]engine.Recorded{e}, c[:n[i]]...)...), n)
		}
		if !done {
			return
		}
		orders++
		value, _ := apply(t, projection(node), prefix)
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

func TestProjectionKey(t *testing.T) {
	node := spendProjection()
	if k, err := projection(node).Key(added("c1", "alice", 1, "1")); err != nil || k != "alice" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	if k, err := projection(node).Key(emptied("c1", "bob", 1)); err != nil || k != "bob" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	if _, err := projection(node).Key(added("c1", "", 1, "1")); err == nil || !strings.Contains(err.Error(), "empty key for ItemAdded of c1") {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := projection(node).Key(engine.Recorded{Type: "CartAbandoned", AggregateID: "c1", Data: CartAbandoned{"c1"}}); err == nil ||
		!strings.Contains(err.Error(), "projection customer-spend has no handler for CartAbandoned events") {
		t.Fatalf("a type without a handler: %v", err)
	}
	p := projection(node)
	if node.Name() != "customer-spend" || p.Topic != "events.Cart" || engine.ProjectionGroup("shop", node.Name()) != "shop-customer-spend" {
		t.Fatalf("node %s %s %s", node.Name(), p.Topic, engine.ProjectionGroup("shop", node.Name()))
	}
	if s := topologies.New("carts", node).String(); !strings.Contains(s, "projection customer-spend of events.Cart (CartEmptied, ItemAdded) into topologies_test.spend per key") {
		t.Fatalf("String = %q", s)
	}
}

func ExampleProjection() {
	type OrderPaid struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	type OrderRefunded struct {
		OrderID    int64
		CustomerID int64
	}
	// Revenue is what each customer paid, by order (cents).
	type Revenue struct {
		Orders map[string]int64 `json:"orders"`
	}
	orderEvents := topologies.EventTopicOf("events.Order", OrderPaid{}, OrderRefunded{})
	customer := func(id int64) string { return fmt.Sprint(id) }
	revenue := topologies.Projection("customer-revenue", orderEvents,
		topologies.On(func(e OrderPaid) string { return customer(e.CustomerID) },
			func(r Revenue, e topologies.Recorded[OrderPaid]) Revenue {
				cents, _ := new(big.Rat).Mul(e.Data.Amount, big.NewRat(100, 1)).Float64()
				orders := maps.Clone(r.Orders)
				if orders == nil {
					orders = map[string]int64{}
				}
				orders[e.AggregateID] = int64(cents)
				return Revenue{Orders: orders}
			}),
		topologies.On(func(e OrderRefunded) string { return customer(e.CustomerID) },
			func(r Revenue, e topologies.Recorded[OrderRefunded]) Revenue {
				orders := maps.Clone(r.Orders)
				delete(orders, e.AggregateID)
				return Revenue{Orders: orders}
			}))
	topo := topologies.New("order-projections", revenue)
	if err := topo.Validate(); err != nil {
		fmt.Println(err)
	}
	fmt.Print(topo)

	// Events another topology derived, published to the projection in a
	// test harness.
	h := topotest.New(log.Default(), topo)
	at := func(lsn change.LSN) change.Position { return change.Position{CommitLSN: lsn} }
	h.PublishEvents(
		topotest.Event{Topic: "events.Order", Type: "OrderPaid", AggregateID: "41", Position: at(7), Data: OrderPaid{41, 9, big.NewRat(25, 2)}},
		topotest.Event{Topic: "events.Order", Type: "OrderPaid", AggregateID: "42", Position: at(8), Data: OrderPaid{42, 9, big.NewRat(3, 1)}},
		topotest.Event{Topic: "events.Order", Type: "OrderRefunded", AggregateID: "42", Position: at(9), Data: OrderRefunded{42, 9}},
	)
	state, _ := topotest.ProjectionState(h, revenue, "9")
	fmt.Printf("%+v\n", state)
	fmt.Printf("key 9: %s\n", topotest.ProjectionTable(h, revenue)["9"])
	// Output:
	// topology order-projections
	//   projection customer-revenue of events.Order (OrderPaid, OrderRefunded) into topologies_test.Revenue per key
	// {Orders:map[41:1250]}
	// key 9: {"state":{"orders":{"41":1250}},"applied":{"41":{"position":"0000000000000007/00000000","types":["OrderPaid"]},"42":{"position":"0000000000000009/00000000","types":["OrderRefunded"]}}}
}
