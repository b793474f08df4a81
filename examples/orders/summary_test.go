package orders_test

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// memReadModel runs a read model's two stages in memory, through the stage
// functions of its runtime form (engine.ReadModel), delivering the messages
// of different keys in a random order (each key's in order, as Kafka
// partitions do), and some twice. The topotest harness delivers them in one
// order, first in first out; the convergence test below needs many.
type memReadModel struct {
	node  *topologies.ReadModelNode[orders.OrderSummary]
	stage *engine.ReadModel
	rng   *rand.Rand
	join  map[string]*engine.JoinState
	model map[string]*engine.ModelState
	// pending messages per key, each key's in order.
	joinQ  map[string][]engine.JoinMsg
	modelQ map[string][]engine.ModelMsg
	// sent is every message the join stage sent the model stage: the
	// updates topic, which a reset model group reads again.
	sent []engine.Keyed[engine.ModelMsg]
}

func newMemReadModel(node *topologies.ReadModelNode[orders.OrderSummary], seed uint64) *memReadModel {
	return &memReadModel{node: node, stage: node.Engine().(*engine.ReadModel), rng: rand.New(rand.NewPCG(seed, seed)),
		join: map[string]*engine.JoinState{}, model: map[string]*engine.ModelState{},
		joinQ: map[string][]engine.JoinMsg{}, modelQ: map[string][]engine.ModelMsg{}}
}

func (m *memReadModel) feed(t *testing.T, topic string, ev *change.Event) {
	t.Helper()
	var err error
	switch {
	case topic == m.stage.Root.Topic:
		var model engine.Keyed[engine.ModelMsg]
		var join *engine.Keyed[engine.JoinMsg]
		model, join, err = m.stage.RouteRoot(ev)
		m.modelQ[model.Key] = append(m.modelQ[model.Key], model.Msg)
		if join != nil {
			m.joinQ[join.Key] = append(m.joinQ[join.Key], join.Msg)
		}
	case m.stage.IsChildren(topic):
		row := ev.After
		if row == nil {
			row = ev.Before
		}
		var k engine.Keyed[engine.JoinMsg]
		k, err = m.stage.RouteChild(topic, "id="+strconv.FormatInt(row["id"].(int64), 10), ev)
		m.joinQ[k.Key] = append(m.joinQ[k.Key], k.Msg)
	default:
		var k engine.Keyed[engine.JoinMsg]
		k, err = m.stage.RouteRef(topic, ev)
		m.joinQ[k.Key] = append(m.joinQ[k.Key], k.Msg)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// drain delivers every pending message, in a random order across keys, and
// a random tenth of them twice.
func (m *memReadModel) drain(t *testing.T) {
	t.Helper()
	for len(m.joinQ)+len(m.modelQ) > 0 {
		keys := make([]string, 0, len(m.joinQ)+len(m.modelQ))
		for k := range m.joinQ {
			keys = append(keys, "j"+k)
		}
		for k := range m.modelQ {
			keys = append(keys, "m"+k)
		}
		slices.Sort(keys) // map order is random, but not seeded
		pick := keys[m.rng.IntN(len(keys))]
		times := 1
		if m.rng.IntN(10) == 0 {
			times = 2
		}
		if key := pick[1:]; pick[0] == 'j' {
			msg := m.joinQ[key][0]
			if m.joinQ[key] = m.joinQ[key][1:]; len(m.joinQ[key]) == 0 {
				delete(m.joinQ, key)
			}
			for range times {
				next, loops, updates, dup := m.stage.Join(key, m.join[key], msg)
				if dup {
					continue
				}
				m.join[key] = next
				for _, l := range loops {
					m.joinQ[l.Key] = append(m.joinQ[l.Key], l.Msg)
				}
				for _, u := range updates {
					m.modelQ[u.Key] = append(m.modelQ[u.Key], u.Msg)
					m.sent = append(m.sent, u)
				}
			}
		} else {
			msg := m.modelQ[key][0]
			if m.modelQ[key] = m.modelQ[key][1:]; len(m.modelQ[key]) == 0 {
				delete(m.modelQ, key)
			}
			for range times {
				next, dup, err := m.stage.Apply(key, m.model[key], msg, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !dup {
					m.model[key] = next
				}
			}
		}
	}
}

func (m *memReadModel) documents(t *testing.T) map[string]orders.OrderSummary {
	t.Helper()
	out := map[string]orders.OrderSummary{}
	for k, st := range m.model {
		if st.Document == nil {
			continue // the order is not there
		}
		doc, err := m.node.Document(st.Document)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = doc
	}
	return out
}

// TestSummaryConvergesWhateverTheOrder feeds the same changes to the read
// model's stages many times, delivered in different orders across keys and
// partly twice: the summaries are always the same, and what the workload
// says they are.
func TestSummaryConvergesWhateverTheOrder(t *testing.T) {
	const prefix, schema = "p", "s"
	topic := func(table string) string { return prefix + "." + schema + "." + table }
	day := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	lsn := change.LSN(0x1000)
	ev := func(op change.Op, before, after change.Row) *change.Event {
		lsn += 0x100
		return &change.Event{Op: op, Before: before, After: after, Position: change.Position{CommitLSN: lsn}}
	}
	order := func(id, customer int64, status, amount string) change.Row {
		return change.Row{"id": id, "customer_id": customer, "status": status, "amount": rat(amount), "created_at": day}
	}
	item := func(id, orderID int64, qty int32, price string) change.Row {
		return change.Row{"id": id, "order_id": orderID, "product": "p" + strconv.FormatInt(id, 10), "quantity": qty, "unit_price": rat(price)}
	}
	customer := func(id int64, name, segment string) change.Row {
		return change.Row{"id": id, "name": name, "segment": segment}
	}
	type step struct {
		topic string
		ev    *change.Event
	}
	steps := []step{
		{topic("order_items"), ev(change.OpCreate, nil, item(10, 3, 2, "1.25"))},
		{topic("customers"), ev(change.OpCreate, nil, customer(1, "Ada", "retail"))},
		{topic("orders"), ev(change.OpCreate, nil, order(1, 1, "new", "10.00"))},
		{topic("orders"), ev(change.OpCreate, nil, order(3, 3, "new", "7.00"))},
		{topic("orders"), ev(change.OpCreate, nil, order(4, 1, "new", "1.00"))},
		{topic("order_items"), ev(change.OpCreate, nil, item(1, 1, 3, "1.50"))},
		{topic("order_items"), ev(change.OpCreate, nil, item(2, 1, 1, "4.99"))},
		{topic("customers"), ev(change.OpCreate, nil, customer(3, "Linus", "retail"))},
		{topic("customers"), ev(change.OpUpdate, nil, customer(1, "Ada Lovelace", "vip"))},
		{topic("orders"), ev(change.OpUpdate, nil, order(4, 3, "paid", "1.00"))},
		{topic("order_items"), ev(change.OpUpdate, nil, item(2, 4, 2, "4.99"))},
		{topic("orders"), ev(change.OpUpdate, nil, order(4, 1, "paid", "1.00"))}, // back to customer 1
		{topic("customers"), ev(change.OpUpdate, nil, customer(1, "Ada L.", "vip"))},
		{topic("orders"), ev(change.OpDelete, change.Row{"id": int64(3)}, nil)},
		{topic("order_items"), ev(change.OpDelete, change.Row{"id": int64(1)}, nil)},
	}
	want := map[string]orders.OrderSummary{
		"1": {OrderID: 1, CustomerID: 1, CustomerName: "Ada L.", CustomerSegment: "vip", Status: "new", Amount: "10.00", CreatedAt: day, Items: 0, ItemsTotal: "0.00"},
		"4": {OrderID: 4, CustomerID: 1, CustomerName: "Ada L.", CustomerSegment: "vip", Status: "paid", Amount: "1.00", CreatedAt: day, Items: 1, ItemsTotal: "9.98"},
	}
	node := orders.SummaryNode(prefix, schema)
	var first map[string]*engine.ModelState
	for seed := range uint64(50) {
		m := newMemReadModel(node, seed)
		for _, s := range steps {
			m.feed(t, s.topic, s.ev)
			if m.rng.IntN(3) == 0 {
				m.drain(t) // sometimes the stages keep up, sometimes they lag
			}
		}
		m.drain(t)
		if got := m.documents(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: summaries\n%+v\nwant\n%+v", seed, got, want)
		}
		// A replay (both groups reset to the beginning, state kept): every
		// change and every update again, in another order.
		before, _ := json.Marshal(m.model)
		for _, u := range m.sent {
			m.modelQ[u.Key] = append(m.modelQ[u.Key], u.Msg)
		}
		for _, s := range steps {
			m.feed(t, s.topic, s.ev)
		}
		m.drain(t)
		if after, _ := json.Marshal(m.model); string(after) != string(before) {
			t.Fatalf("seed %d: the replay changed the state\nbefore %s\nafter  %s", seed, before, after)
		}
		if first == nil {
			first = m.model
			continue
		}
		// The documents are the same bytes whatever the order.
		for k, st := range m.model {
			if !jsonEqual(st.Document, first[k].Document) {
				t.Fatalf("seed %d: document %s is %s, with seed 0 %s", seed, k, st.Document, first[k].Document)
			}
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool { return string(a) == string(b) }

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

func TestReadModelValidation(t *testing.T) {
	orders3 := topologies.TableOf[orders.Order]("p", "s", "orders")
	items := topologies.TableOf[orders.OrderItem]("p", "s", "order_items")
	key := func(o orders.Order) string { return "" }
	apply := func(*orders.OrderSummary, orders.Order) {}
	for _, tc := range []struct {
		name string
		node *topologies.ReadModelNode[orders.OrderSummary]
		want string
	}{
		{"no root", topologies.ReadModel[orders.OrderSummary]("m",
			topologies.Children(items, func(orders.OrderItem) string { return "" }, func(*orders.OrderSummary, []orders.OrderItem) {})), "no Root table"},
		{"two roots", topologies.ReadModel[orders.OrderSummary]("m", topologies.Root(orders3, key, apply), topologies.Root(orders3, key, apply)), "a read model has one root table"},
		{"bad name", topologies.ReadModel[orders.OrderSummary]("Summary", topologies.Root(orders3, key, apply)), `name "Summary"`},
		{"nil apply", topologies.ReadModel[orders.OrderSummary]("m", topologies.Root[orders.OrderSummary](orders3, key, nil)), "root key or apply function is nil"},
		{"table twice", topologies.ReadModel[orders.OrderSummary]("m", topologies.Root(orders3, key, apply),
			topologies.Children(topologies.TableOf[orders.OrderItem]("p", "s", "orders"), func(orders.OrderItem) string { return "" }, func(*orders.OrderSummary, []orders.OrderItem) {})), "reads a table twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := topologies.New("t", tc.node).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	dup := topologies.New("t", topologies.ReadModel[orders.OrderSummary]("m", topologies.Root(orders3, key, apply)), topologies.ReadModel[orders.OrderSummary]("m", topologies.Root(orders3, key, apply)))
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "two read models named m") {
		t.Fatalf("two read models of one name: %v", err)
	}
	if err := orders.Summaries("p", "s", "summaries").Validate(); err != nil {
		t.Fatalf("the example's read model: %v", err)
	}
	if got := orders.Summaries("p", "s", "summaries").String(); !strings.Contains(got, "read model summary (documents as orders.OrderSummary) keyed by p.s.orders (rows as orders.Order)\n    children p.s.order_items (rows as orders.OrderItem)\n    reference p.s.customers (rows as orders.Customer)\n  search index summaries over read model summary\n") {
		t.Fatalf("String() = %q", got)
	}

	// A search index over a read model must be in its topology. (That it
	// agrees with the read model's document type, the compiler checks.)
	model := topologies.ReadModel[orders.OrderSummary]("m", topologies.Root(orders3, key, apply))
	for _, tc := range []struct {
		name string
		topo *topologies.Topology
		want string
	}{
		{"read model elsewhere", topologies.New("t", topologies.IndexReadModel[orders.OrderSummary](model, "i", nil)),
			"search index i over read model m: the read model is not a node of the topology; add it"},
		{"indexed twice", topologies.New("t", model, topologies.IndexReadModel[orders.OrderSummary](model, "i", nil), topologies.IndexReadModel[orders.OrderSummary](model, "j", nil)),
			"indexes read model m twice"},
		{"bad index name", topologies.New("t", model, topologies.IndexReadModel[orders.OrderSummary](model, "Summaries", nil)),
			`index name "Summaries": use lower case only`},
		{"nil read model", topologies.New("t", topologies.IndexReadModel[orders.OrderSummary](nil, "i", nil)),
			"the read model is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.topo.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestSummarySearchDocuments checks, with the topotest harness, what the
// search index over the read model writes: nothing while an order's line
// item is there without the order, the summary at the state's revision once
// the order is (with its customer, whose older row makes a newer revision),
// nothing newer for a redelivered change, and a delete once the order is
// gone, which a replay does not undo.
func TestSummarySearchDocuments(t *testing.T) {
	topo := orders.Summaries("p", "s", "summaries")
	model := topo.Nodes[0].(*topologies.ReadModelNode[orders.OrderSummary])
	search := topo.Nodes[1].Engine().(*engine.ReadModelIndex)
	if search.Model != model.Engine() || search.Index != "summaries" || !strings.Contains(search.Mapping, `"customer_name"`) {
		t.Fatalf("search node %s over %v", search.Index, search.Model)
	}
	h := topotest.New(t, topo)
	rows := topotest.Table(h, topologies.TableOf[orders.Order]("p", "s", "orders"))
	items := topotest.Table(h, topologies.TableOf[orders.OrderItem]("p", "s", "order_items"))
	customers := topotest.Table(h, orders.TableOfCustomers("p", "s"))

	customers.Insert(orders.Customer{ID: 3, Name: "Ada", Segment: "vip"})
	items.Insert(orders.OrderItem{ID: 1, OrderID: 7, Product: "pen", Quantity: 2, UnitPrice: rat("1.50")})
	if st, ok := topotest.ReadModelStateOf(h, model, "7"); !ok || st.Document != nil {
		t.Fatalf("state before the order: %+v, %v", st, ok)
	}
	if _, ok := h.Document("summaries", "7"); ok {
		t.Fatal("a document before the order")
	}
	created := rows.Insert(orders.Order{ID: 7, CustomerID: 3, Status: "paid", Amount: rat("3.00")})
	d, ok := h.Document("summaries", "7")
	if !ok {
		t.Fatal("no document for the order")
	}
	want := orders.OrderSummary{OrderID: 7, CustomerID: 3, CustomerName: "Ada", CustomerSegment: "vip", Status: "paid", Amount: "3.00", Items: 1, ItemsTotal: "3.00"}
	if got := d.Value.(orders.OrderSummary); got != want {
		t.Fatalf("document %+v, want %+v", got, want)
	}
	// The item, the order, then the customer's row joining: older than the
	// order, it leaves Version alone and makes revision 3.
	st, _ := topotest.ReadModelStateOf(h, model, "7")
	if st.Revision != 3 || d.Version != 3 || st.Version != created.Event.Position || d.Position != st.Version {
		t.Fatalf("document version %d at %s; state revision %d, version %s", d.Version, d.Position, st.Revision, st.Version)
	}
	stats := h.Stats()
	h.Redeliver(created)
	if d, _ := h.Document("summaries", "7"); d.Version != 3 || h.Stats().Duplicates != stats.Duplicates+1 {
		t.Fatalf("after a redelivery: version %d, stats %+v (were %+v)", d.Version, h.Stats(), stats)
	}
	rows.Delete(orders.Order{ID: 7})
	if _, ok := h.Document("summaries", "7"); ok {
		t.Fatal("a document after the delete")
	}
	h.Replay()
	if _, ok := h.Document("summaries", "7"); ok {
		t.Fatal("the replay brought the deleted summary back")
	}
}
