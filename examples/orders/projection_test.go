package orders_test

import (
	"maps"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// projectEvents folds events into a projection's table (key → value) as its
// processor does, and returns how many events changed it.
func projectEvents(t *testing.T, node *engine.Projection, table map[string][]byte, events []engine.Recorded) int {
	t.Helper()
	applied := 0
	for _, e := range events {
		key, err := node.Key(e)
		if err != nil {
			t.Fatal(err)
		}
		next, ok, err := node.Apply(table[key], e)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			table[key] = next
			applied++
		}
	}
	return applied
}

// wantLTV computes the customer-ltv projection from the rows of the orders
// table, as the projection's documentation defines it.
func wantLTV(rows map[int64]orders.Order) map[string]orders.CustomerLTV {
	out := map[string]orders.CustomerLTV{}
	for _, o := range rows {
		c := strconv.FormatInt(o.CustomerID, 10)
		s, ok := out[c]
		if !ok {
			s = orders.CustomerLTV{OrdersPerStatus: map[string]int64{}, Orders: map[string]orders.CustomerOrder{}}
		}
		s.Orders[strconv.FormatInt(o.ID, 10)] = orders.CustomerOrder{Status: o.Status, AmountCents: orders.Cents(o.Amount)}
		s.OrdersPerStatus[o.Status]++
		if o.Status == "paid" || o.Status == "shipped" {
			s.LifetimeValueCents += orders.Cents(o.Amount)
		}
		out[c] = s
	}
	return out
}

// gotLTV decodes a projection table, leaving out customers without orders
// (all of them deleted), which the rows cannot show.
func gotLTV(t *testing.T, node *topologies.ProjectionNode[orders.CustomerLTV], table map[string][]byte) map[string]orders.CustomerLTV {
	t.Helper()
	out := map[string]orders.CustomerLTV{}
	for k, v := range table {
		ltv, err := node.State(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(ltv.Orders) > 0 {
			out[k] = ltv
		}
	}
	return out
}

// TestCustomerLTVProjection runs a random workload of inserts, status
// transitions, amount changes and deletes through the order events and the
// customer-ltv projection, without Kafka, and checks that the projection
// equals what the final rows say; then that folding the same events with the
// orders interleaved otherwise, and with every event twice, leaves the same
// bytes.
func TestCustomerLTVProjection(t *testing.T) {
	derive := orders.Events("shop", "public", "events.Order").Nodes[0].Engine().(*engine.Events)
	topo := orders.Projections("events.Order")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	ltv := orders.CustomerLTVNode("events.Order")
	node := ltv.Engine().(*engine.Projection)

	rows := map[int64]orders.Order{}
	var log []engine.Recorded
	emit := func(op change.Op, before, after *orders.Order, lsn change.LSN) {
		var b, a any
		if before != nil {
			b = *before
		}
		if after != nil {
			a = *after
		}
		pos := change.Position{CommitLSN: lsn, Index: 1}
		for _, e := range derive.Derive(op, b, a, pos, change.Source{}) {
			log = append(log, engine.Recorded{Type: e.Type, AggregateID: e.AggregateID, ID: topologies.EventID(pos, e.AggregateID, e.Type), Position: pos, Data: e.Data})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	amount := func() *big.Rat { return big.NewRat(rng.Int64N(100_000), 100) }
	for lsn := change.LSN(1); lsn <= 600; lsn++ {
		id := rng.Int64N(40)
		prev, exists := rows[id]
		if !exists {
			o := orders.Order{ID: id, CustomerID: rng.Int64N(5), Status: "new", Amount: amount()}
			rows[id] = o
			emit(change.OpCreate, nil, &o, lsn)
			continue
		}
		next := prev
		switch rng.IntN(7) {
		case 0:
			delete(rows, id)
			emit(change.OpDelete, &prev, nil, lsn)
			continue
		case 1:
			next.Amount = amount()
		case 2:
			next.Status, next.Amount = "paid", amount()
		case 3:
			next.CreatedAt = next.CreatedAt.Add(time.Hour) // no event
		default:
			next.Status = []string{"paid", "shipped", "cancelled"}[rng.IntN(3)]
		}
		rows[id] = next
		emit(change.OpUpdate, &prev, &next, lsn)
	}
	live := map[string][]byte{}
	if n := projectEvents(t, node, live, log); n != len(log) {
		t.Fatalf("applied %d of %d events", n, len(log))
	}
	want := wantLTV(rows)
	if got := gotLTV(t, ltv, live); !reflect.DeepEqual(got, want) {
		t.Fatalf("projection\n%+v\nwant\n%+v", got, want)
	}
	types := map[string]int{}
	for _, e := range log {
		types[e.Type]++
	}
	if len(want) != 5 || len(types) != 6 {
		t.Fatalf("the workload is too small: %d customers, events %v", len(want), types)
	}

	// A rebuild that reads the orders' events grouped by order (as from
	// other partitions), each twice.
	regrouped := slices.Clone(log)
	slices.SortStableFunc(regrouped, func(a, b engine.Recorded) int {
		x, _ := strconv.Atoi(a.AggregateID)
		y, _ := strconv.Atoi(b.AggregateID)
		return y - x
	})
	var twice []engine.Recorded
	for _, e := range regrouped {
		twice = append(twice, e, e)
	}
	rebuilt := map[string][]byte{}
	if n := projectEvents(t, node, rebuilt, twice); n != len(log) {
		t.Fatalf("the rebuild applied %d events, want %d", n, len(log))
	}
	if !maps.EqualFunc(live, rebuilt, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("the rebuilt table differs from the live one")
	}
	// Every event again, on the live table: nothing changes.
	if n := projectEvents(t, node, live, log); n != 0 {
		t.Fatalf("redelivery applied %d events", n)
	}
}
