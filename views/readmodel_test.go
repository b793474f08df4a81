package views_test

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The shop the read model and projection tests run: orders that reference
// customers, a summary per order with its customer's name, the order events,
// and a count of every customer's orders folded from the events.
type (
	shopOrder struct {
		ID         int64
		CustomerID int64
		Status     string
	}
	shopCustomer struct {
		ID   int64
		Name string
	}
	shopSummary struct {
		ID       int64  `json:"id"`
		Customer string `json:"customer"` // "" until the customer row is known
		Status   string `json:"status"`
	}
	orderPlaced  struct{ OrderID, CustomerID int64 }
	orderRemoved struct{ OrderID, CustomerID int64 }
	// customerCount is what the projection keeps per customer.
	customerCount struct {
		Placed  int `json:"placed"`
		Removed int `json:"removed"`
	}
)

var (
	shopOrders    = topologies.TableOf[shopOrder]("shop", "public", "orders")
	shopCustomers = topologies.TableOf[shopCustomer]("shop", "public", "customers")
	shopEvents    = topologies.EventTopicOf("events.ShopOrder", orderPlaced{}, orderRemoved{})

	// The tables as capture describes them, to encode their changes.
	shopOrdersTable = &change.Table{Schema: "public", Name: "orders", Columns: []change.Column{
		{Name: "id", Type: "int8", Key: true}, {Name: "customer_id", Type: "int8"}, {Name: "status", Type: "text"}}}
	shopCustomersTable = &change.Table{Schema: "public", Name: "customers", Columns: []change.Column{
		{Name: "id", Type: "int8", Key: true}, {Name: "name", Type: "text"}}}
)

func shopSummaries() *topologies.ReadModelNode[shopSummary] {
	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	return topologies.ReadModel[shopSummary]("summary",
		topologies.Root(shopOrders, func(o shopOrder) string { return id(o.ID) },
			func(s *shopSummary, o shopOrder) { s.ID, s.Status = o.ID, o.Status }),
		topologies.Reference(shopCustomers, func(c shopCustomer) string { return id(c.ID) },
			func(o shopOrder) string { return id(o.CustomerID) },
			func(s *shopSummary, c shopCustomer) { s.Customer = c.Name }))
}

func shopCounts() *topologies.ProjectionNode[customerCount] {
	customer := func(v int64) string { return strconv.FormatInt(v, 10) }
	return topologies.Projection("orders-per-customer", shopEvents,
		topologies.On(func(e orderPlaced) string { return customer(e.CustomerID) },
			func(s customerCount, _ topologies.Recorded[orderPlaced]) customerCount { s.Placed++; return s }),
		topologies.On(func(e orderRemoved) string { return customer(e.CustomerID) },
			func(s customerCount, _ topologies.Recorded[orderRemoved]) customerCount { s.Removed++; return s }))
}

func deriveShopEvents(c topologies.Change[shopOrder]) []topologies.Event {
	switch {
	case c.Op == change.OpCreate:
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.After.ID, 10), Data: orderPlaced{c.After.ID, c.After.CustomerID}}}
	case c.Op == change.OpDelete && c.Before != nil:
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.Before.ID, 10), Data: orderRemoved{c.Before.ID, c.Before.CustomerID}}}
	}
	return nil
}

// shopProcessor runs topo's processor on a goka tester of its own until the
// test ends, and returns a function that writes a change to its input as
// capture does (an Avro envelope, and a tombstone after a delete), returning
// once the processor has handled it.
func shopProcessor(t *testing.T, topo *topologies.Topology, tt *tester.Tester) func(topotest.Record) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc := serde.NewEncoder(client, "shop")
	p, err := processors.NewProcessor(topo, processors.Config{Tester: tt, Decoder: serde.NewDecoder(client), Encoder: enc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !p.Ready(); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("processor: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("processor not ready in 30s")
		}
	}
	tt.Catchup()
	producer, err := tt.EmitterProducerBuilder()(nil, "capture", nil)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]*change.Table{string(shopOrders.Topic): shopOrdersTable, string(shopCustomers.Topic): shopCustomersTable}
	return func(rec topotest.Record) {
		t.Helper()
		table := tables[rec.Topic]
		e, err := enc.Encode(ctx, table, rec.Event)
		if err != nil {
			t.Fatalf("encode %+v: %v", rec.Event, err)
		}
		producer.Emit(e.Topic, string(e.Key), e.Value)
		if rec.Event.Op == change.OpDelete {
			if e, err = enc.Tombstone(ctx, table, rec.Event); err != nil {
				t.Fatal(err)
			}
			producer.Emit(e.Topic, string(e.Key), nil)
		}
	}
}

// forwarder copies what a processor writes to table topics on one goka
// tester to the same topics of another, byte for byte, as Kafka carries a
// processor's table to a view. (A goka tester holds one codec per topic:
// the processor's and the view's differ, so they cannot share one.)
type forwarder struct {
	trackers map[string]*tester.QueueTracker // by topic
	producer goka.Producer
}

func newForwarder(t *testing.T, from, to *tester.Tester, topics ...goka.Table) *forwarder {
	t.Helper()
	producer, err := to.EmitterProducerBuilder()(nil, "forwarder", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{trackers: map[string]*tester.QueueTracker{}, producer: producer}
	for _, topic := range topics {
		f.trackers[string(topic)] = from.NewQueueTracker(string(topic))
	}
	return f
}

// forward copies every record written since the last call, and returns once
// the views have consumed them.
func (f *forwarder) forward() {
	for topic, tr := range f.trackers {
		for key, value, ok := tr.NextRaw(); ok; key, value, ok = tr.NextRaw() {
			f.producer.Emit(topic, key, value)
		}
	}
}

// TestReadModelReferrersAndProjectionViews runs a read model with a
// reference table and a projection on the real processors (on goka's
// tester), and reads their tables through views.ReadModel, views.Referrers
// and views.Projection: typed documents, no document once the root row is
// deleted, the root keys referencing a row (and nothing else the join table
// keeps), and the projection's states.
func TestReadModelReferrersAndProjectionViews(t *testing.T) {
	model, counts := shopSummaries(), shopCounts()
	topo := topologies.New("shop", model, topologies.Events(shopOrders, shopEvents, deriveShopEvents), counts)
	processing, viewing := tester.New(t), tester.New(t)

	// The views, on their own tester, recover (there is nothing yet) before
	// anything is written: the tester hands a view only later records.
	summaries, err := views.ReadModel(nil, topo.Name, model, views.WithTester(viewing))
	if err != nil {
		t.Fatal(err)
	}
	byCustomer, err := views.Referrers(nil, topo.Name, model, shopCustomers, views.WithTester(viewing))
	if err != nil {
		t.Fatal(err)
	}
	perCustomer, err := views.Projection(nil, topo.Name, counts, views.WithTester(viewing))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []view{summaries, byCustomer, perCustomer} {
		runTable(t, v)
	}
	waitRecovered(t, summaries, byCustomer, perCustomer)
	if got, want := []string{summaries.Topic(), byCustomer.Topic(), perCustomer.Topic()},
		[]string{"shop-summary-table", "shop-summary-join-table", "shop-orders-per-customer-table"}; !slices.Equal(got, want) {
		t.Fatalf("the views follow %v, want %v", got, want)
	}
	f := newForwarder(t, processing, viewing,
		processors.ReadModelTable(topo.Name, model), processors.JoinTable(topo.Name, model), processors.ProjectionTable(topo.Name, counts))

	capture := shopProcessor(t, topo, processing)
	h := topotest.New(t, topo) // makes the changes capture would send
	orders, customers := topotest.Table(h, shopOrders), topotest.Table(h, shopCustomers)
	for _, rec := range []topotest.Record{
		customers.Insert(shopCustomer{ID: 1, Name: "Ada"}),
		orders.Insert(shopOrder{ID: 1, CustomerID: 1, Status: "new"}),
		orders.Insert(shopOrder{ID: 2, CustomerID: 1, Status: "paid"}),
		orders.Insert(shopOrder{ID: 3, CustomerID: 2, Status: "new"}), // customer 2 is not there yet
	} {
		capture(rec)
	}
	f.forward()

	checkGet(t, summaries, "1", shopSummary{ID: 1, Customer: "Ada", Status: "new"}, true)
	checkGet(t, summaries, "3", shopSummary{ID: 3, Status: "new"}, true)
	checkGet(t, summaries, "9", shopSummary{}, false)
	checkGet(t, byCustomer, "1", []string{"1", "2"}, true)
	checkGet(t, byCustomer, "2", []string{"3"}, true)
	checkGet(t, byCustomer, "9", nil, false)
	checkGet(t, perCustomer, "1", customerCount{Placed: 2}, true)
	checkGet(t, perCustomer, "2", customerCount{Placed: 1}, true)
	checkGet(t, perCustomer, "9", customerCount{}, false)
	// The join table also keeps the orders' references, under keys of its
	// own: the view sees the customers' entries only, by customer key.
	checkEach(t, byCustomer, map[string][]string{"1": {"1", "2"}, "2": {"3"}})

	for _, rec := range []topotest.Record{
		orders.Delete(shopOrder{ID: 2}),
		customers.Update(shopCustomer{ID: 1, Name: "Ada Lovelace"}),
		customers.Insert(shopCustomer{ID: 2, Name: "Grace"}),
	} {
		capture(rec)
	}
	f.forward()

	// The deleted order's state stays in the table (so that a replay does
	// not bring it back), without a document: the view has none.
	checkGet(t, summaries, "2", shopSummary{}, false)
	checkGet(t, summaries, "1", shopSummary{ID: 1, Customer: "Ada Lovelace", Status: "new"}, true)
	checkGet(t, summaries, "3", shopSummary{ID: 3, Customer: "Grace", Status: "new"}, true)
	checkEach(t, summaries, map[string]shopSummary{
		"1": {ID: 1, Customer: "Ada Lovelace", Status: "new"},
		"3": {ID: 3, Customer: "Grace", Status: "new"},
	})
	checkGet(t, byCustomer, "1", []string{"1"}, true)
	checkGet(t, perCustomer, "1", customerCount{Placed: 2, Removed: 1}, true)
	checkEach(t, perCustomer, map[string]customerCount{"1": {Placed: 2, Removed: 1}, "2": {Placed: 1}})
}

func checkGet[V any](t *testing.T, table *views.Table[V], key string, want V, wantOK bool) {
	t.Helper()
	got, ok, err := table.Get(key)
	if err != nil || ok != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Get(%q) = %+v, %v, %v; want %+v, %v, nil", table.Topic(), key, got, ok, err, want, wantOK)
	}
}

func checkEach[V any](t *testing.T, table *views.Table[V], want map[string]V) {
	t.Helper()
	got := map[string]V{}
	if err := table.Each(func(key string, v V) bool {
		got[key] = v
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Each visited %+v, want %+v", table.Topic(), got, want)
	}
}
