package topotest_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

type item struct {
	OrderID int64 `cdc:"order_id"`
	Line    int64
	Qty     int64
}

type customer struct {
	ID   int64
	Name string
}

var (
	items     = topologies.TableOf[item]("shop", "public", "items")
	customers = topologies.TableOf[customer]("shop", "public", "customers")
)

// summary is an order with its customer's name and its items' quantities.
type summary struct {
	ID       int64  `json:"id"`
	Status   string `json:"status"`
	Customer string `json:"customer"`
	Items    int    `json:"items"`
	Qty      int64  `json:"qty"`
}

func summaryModel() *topologies.ReadModelNode[summary] {
	return topologies.ReadModel[summary]("summary",
		topologies.Root(orders, func(o order) string { return strconv.FormatInt(o.ID, 10) },
			func(s *summary, o order) { s.ID, s.Status = o.ID, o.Status }),
		topologies.Children(items, func(i item) string { return strconv.FormatInt(i.OrderID, 10) },
			func(s *summary, rows []item) {
				s.Items, s.Qty = len(rows), 0
				for _, r := range rows {
					s.Qty += r.Qty
				}
			}),
		topologies.Reference(customers, func(c customer) string { return strconv.FormatInt(c.ID, 10) },
			func(o order) string { return strconv.FormatInt(o.Customer, 10) },
			func(s *summary, c customer) { s.Customer = c.Name }))
}

// feeds returns the harness's feeds of the read model's tables; items are
// keyed by (order_id, line).
func feeds(h *topotest.Harness) (*topotest.Rows[order], *topotest.Rows[item], *topotest.Rows[customer]) {
	return topotest.Table(h, orders), topotest.Table(h, items, topotest.Key("order_id", "line")), topotest.Table(h, customers)
}

// summaries returns the summary read model and a topology of it alone.
func summaries() (*topologies.ReadModelNode[summary], *topologies.Topology) {
	model := summaryModel()
	return model, topologies.New("summaries", model)
}

// TestReadModelJoins: rows of the three tables, in any order, make one
// document per order; a child row is named by its key columns.
func TestReadModelJoins(t *testing.T) {
	model, topo := summaries()
	h := topotest.New(t, topo)
	os, is, cs := feeds(h)
	is.Insert(item{OrderID: 1, Line: 1, Qty: 2}) // before its order
	os.Insert(newOrder(1, 7, "new", 10))         // before its customer
	cs.Insert(customer{ID: 7, Name: "Ada"})
	is.Insert(item{OrderID: 1, Line: 2, Qty: 3})
	os.Insert(newOrder(2, 8, "new", 20)) // a customer never fed
	want := map[string]summary{
		"1": {ID: 1, Status: "new", Customer: "Ada", Items: 2, Qty: 5},
		"2": {ID: 2, Status: "new"},
	}
	if got := topotest.ReadModelDocuments(h, model); !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	if got, ok := topotest.ReadModelDocument(h, model, "1"); !ok || got != want["1"] {
		t.Fatalf("ReadModelDocument(1) = %+v, %v", got, ok)
	}
	if _, ok := topotest.ReadModelDocument(h, model, "3"); ok {
		t.Fatal("a document for an order never fed")
	}
	st, ok := topotest.ReadModelStateOf(h, model, "1")
	// Four rows made the document: the first item, the order, the
	// customer's row joining, the second item.
	if !ok || st.Revision != 4 || st.RootDeleted {
		t.Fatalf("state %+v, %v; want revision 4", st, ok)
	}
	if doc, _ := model.Document(st.Document); doc != want["1"] {
		t.Fatalf("state's document %s, want %+v", st.Document, want["1"])
	}
	if _, ok := topotest.ReadModelStateOf(h, model, "9"); ok {
		t.Fatal("a state for an order never fed")
	}
}

// TestReadModelReferenceReachesEveryDocument: a customer's rename reaches
// each of their orders, and an order that moves to another customer leaves
// the first one's.
func TestReadModelReferenceReachesEveryDocument(t *testing.T) {
	model, topo := summaries()
	h := topotest.New(t, topo)
	os, _, cs := feeds(h)
	cs.Insert(customer{ID: 7, Name: "Ada"})
	cs.Insert(customer{ID: 8, Name: "Linus"})
	os.Insert(newOrder(1, 7, "new", 10))
	os.Insert(newOrder(2, 7, "new", 20))
	os.Insert(newOrder(3, 8, "new", 30))
	cs.Update(customer{ID: 7, Name: "Ada Lovelace"})
	os.Update(newOrder(2, 8, "paid", 20))
	cs.Update(customer{ID: 7, Name: "Ada L."})
	cs.Delete(customer{ID: 8})
	want := map[string]summary{
		"1": {ID: 1, Status: "new", Customer: "Ada L."},
		"2": {ID: 2, Status: "paid"},
		"3": {ID: 3, Status: "new"},
	}
	if got := topotest.ReadModelDocuments(h, model); !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	cs.Insert(customer{ID: 8, Name: "Linus T."})
	want["2"] = summary{ID: 2, Status: "paid", Customer: "Linus T."}
	want["3"] = summary{ID: 3, Status: "new", Customer: "Linus T."}
	if got := topotest.ReadModelDocuments(h, model); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the customer came back: documents %+v, want %+v", got, want)
	}
}

// TestReadModelChildMovesAndDeletes: a child row whose parent changes
// leaves one document for another; deleted rows leave their documents, and
// a deleted order's document is gone for good.
func TestReadModelChildMovesAndDeletes(t *testing.T) {
	model, topo := summaries()
	h := topotest.New(t, topo)
	os, is, _ := feeds(h)
	os.Insert(newOrder(1, 7, "new", 10))
	os.Insert(newOrder(2, 7, "new", 20))
	is.Insert(item{OrderID: 1, Line: 1, Qty: 2})
	// The key is (order_id, line): under another order, the row is another
	// one. A child whose parent function depends on other columns moves.
	moving := topologies.ReadModel[summary]("summary",
		topologies.Root(orders, func(o order) string { return strconv.FormatInt(o.ID, 10) },
			func(s *summary, o order) { s.ID = o.ID }),
		topologies.Children(items, func(i item) string { return strconv.FormatInt(i.Qty, 10) }, // the order is in qty
			func(s *summary, rows []item) { s.Items = len(rows) }))
	h2 := topotest.New(t, topologies.New("moving", moving))
	os2, is2 := topotest.Table(h2, orders), topotest.Table(h2, items, topotest.Key("order_id", "line"))
	os2.Insert(newOrder(1, 7, "new", 10))
	os2.Insert(newOrder(2, 7, "new", 20))
	is2.Insert(item{OrderID: 9, Line: 1, Qty: 1})
	if got := topotest.ReadModelDocuments(h2, moving); got["1"].Items != 1 || got["2"].Items != 0 {
		t.Fatalf("before the move: %+v", got)
	}
	is2.Update(item{OrderID: 9, Line: 1, Qty: 2})
	if got := topotest.ReadModelDocuments(h2, moving); got["1"].Items != 0 || got["2"].Items != 1 {
		t.Fatalf("after the move: %+v", got)
	}
	is2.Delete(item{OrderID: 9, Line: 1})
	if got := topotest.ReadModelDocuments(h2, moving); got["1"].Items != 0 || got["2"].Items != 0 {
		t.Fatalf("after the delete: %+v", got)
	}

	is.Delete(item{OrderID: 1, Line: 1})
	os.Delete(order{ID: 2})
	if got, want := topotest.ReadModelDocuments(h, model), map[string]summary{"1": {ID: 1, Status: "new"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	// The deleted order keeps its state, without a document, so that a
	// replay does not bring it back.
	if st, ok := topotest.ReadModelStateOf(h, model, "2"); !ok || st.Document != nil || !st.RootDeleted {
		t.Fatalf("state of the deleted order: %+v, %v", st, ok)
	}
	if st, _ := topotest.ReadModelStateOf(h, model, "1"); st.RootDeleted {
		t.Fatalf("state of a live order: %+v", st)
	}
	h.Replay()
	if got := topotest.ReadModelDocuments(h, model); len(got) != 1 {
		t.Fatalf("after a replay: documents %+v", got)
	}
}

// TestReadModelRedeliveryAndReplay: every change delivered again, and a
// replay of every topic, leave every state as it was, and count as
// duplicates of the model stage.
func TestReadModelRedeliveryAndReplay(t *testing.T) {
	model, topo := summaries()
	h := topotest.New(t, topo)
	os, is, cs := feeds(h)
	var sent []topotest.Record
	sent = append(sent,
		os.Read(newOrder(1, 7, "new", 10)),
		os.Read(newOrder(2, 8, "new", 20)),
		cs.Read(customer{ID: 7, Name: "Ada"}),
		is.Insert(item{OrderID: 1, Line: 1, Qty: 2}),
		os.Update(newOrder(1, 8, "paid", 10)),
		cs.Insert(customer{ID: 8, Name: "Linus"}),
		is.Update(item{OrderID: 1, Line: 1, Qty: 4}),
		os.Delete(order{ID: 2}),
	)
	states := func() string {
		all := map[string]topotest.ReadModelState{}
		for _, k := range []string{"1", "2"} {
			all[k], _ = topotest.ReadModelStateOf(h, model, k)
		}
		b, err := json.Marshal(all)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before, docs, stats := states(), topotest.ReadModelDocuments(h, model), h.Stats()
	if want := map[string]summary{"1": {ID: 1, Status: "paid", Customer: "Linus", Items: 1, Qty: 4}}; !reflect.DeepEqual(docs, want) {
		t.Fatalf("documents %+v, want %+v", docs, want)
	}
	if stats.Duplicates != 0 {
		t.Fatalf("stats %+v before any redelivery", stats)
	}
	h.Redeliver(sent...)
	// Only the root rows reach the model stage again: the join stage drops
	// the children's and references' changes it has applied, uncounted.
	if got := h.Stats(); got.Duplicates != 4 || got.Changes != stats.Changes+4 {
		t.Fatalf("after a redelivery: stats %+v, were %+v", got, stats)
	}
	h.Replay()
	if after := states(); after != before {
		t.Fatalf("states changed\nbefore %s\nafter  %s", before, after)
	}
	if got := topotest.ReadModelDocuments(h, model); !maps.Equal(got, docs) {
		t.Fatalf("documents %+v, were %+v", got, docs)
	}
	if got := h.Stats(); got.Changes-got.Duplicates != stats.Changes || got.DeadLetters != 0 {
		t.Fatalf("after a replay: stats %+v, were %+v", got, stats)
	}
}

// TestReadModelSearch: the search index over a read model holds each
// document at its revision, deletes it with its order, and a replay of the
// read model's table changes nothing.
func TestReadModelSearch(t *testing.T) {
	model := summaryModel()
	h := topotest.New(t, topologies.New("summaries", model, topologies.IndexReadModel(model, "summaries", nil)))
	os, is, cs := feeds(h)
	os.Insert(newOrder(1, 7, "new", 10))
	is.Insert(item{OrderID: 2, Line: 1, Qty: 1}) // a state without a document
	os.Insert(newOrder(2, 7, "new", 20))
	cs.Insert(customer{ID: 7, Name: "Ada"})
	if _, ok := h.Document("summaries", "3"); ok {
		t.Fatal("a document for an order never fed")
	}
	for _, key := range []string{"1", "2"} {
		d, ok := h.Document("summaries", key)
		st, _ := topotest.ReadModelStateOf(h, model, key)
		if !ok || d.Version != st.Revision || d.Position != st.Version || string(d.Source) != string(st.Document) {
			t.Fatalf("document %s %+v (%s), state revision %d version %s %s", key, d, d.Source, st.Revision, st.Version, st.Document)
		}
		if want, _ := topotest.ReadModelDocument(h, model, key); d.Value != want {
			t.Fatalf("document %s value %+v, want %+v", key, d.Value, want)
		}
	}
	os.Delete(order{ID: 1})
	docs := h.Documents("summaries")
	if len(docs) != 1 || docs[0].ID != "2" || docs[0].Value != (summary{ID: 2, Status: "new", Customer: "Ada", Items: 1, Qty: 1}) {
		t.Fatalf("documents %+v", docs)
	}
	stats := h.Stats()
	h.Replay()
	if got := h.Documents("summaries"); !reflect.DeepEqual(got, docs) {
		t.Fatalf("after a replay: documents %+v, were %+v", got, docs)
	}
	if got := h.Stats(); got.Changes-got.Duplicates != stats.Changes-stats.Duplicates {
		t.Fatalf("a replay applied something: stats %+v, were %+v", got, stats)
	}
}

// TestReadModelAccessorsFailTheTest: reading a read model the topology
// lacks fails the test.
func TestReadModelAccessorsFailTheTest(t *testing.T) {
	topo := func() *topologies.Topology { return topologies.New("summaries", summaryModel()) }
	other := topologies.ReadModel[summary]("other",
		topologies.Root(orders, func(o order) string { return strconv.FormatInt(o.ID, 10) }, func(*summary, order) {}))
	const want = "topology summaries has no read model other (it has: summary)"
	for _, tc := range []struct {
		name string
		f    func(h *topotest.Harness)
	}{
		{"ReadModelDocument", func(h *topotest.Harness) { topotest.ReadModelDocument(h, other, "1") }},
		{"ReadModelDocuments", func(h *topotest.Harness) { topotest.ReadModelDocuments(h, other) }},
		{"ReadModelStateOf", func(h *topotest.Harness) { topotest.ReadModelStateOf(h, other, "1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := failure(func(t topotest.T) { tc.f(topotest.New(t, topo())) }); !strings.Contains(msg, want) {
				t.Fatalf("failure %q, want it to contain %q", msg, want)
			}
		})
	}
}
