package topotest_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
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

func summaryModel() *topologies.ReadModelNode {
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

func documents(h *topotest.Harness) map[string]summary {
	return topotest.ReadModelDocuments[summary](h, "summary")
}

// TestReadModelJoins: rows of the three tables, in any order, make one
// document per order; a child row is named by its key columns.
func TestReadModelJoins(t *testing.T) {
	h := topotest.New(t, topologies.New("summaries", summaryModel()))
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
	if got := documents(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	if got, ok := topotest.ReadModelDocument[summary](h, "summary", "1"); !ok || got != want["1"] {
		t.Fatalf("ReadModelDocument(1) = %+v, %v", got, ok)
	}
	if _, ok := topotest.ReadModelDocument[summary](h, "summary", "3"); ok {
		t.Fatal("a document for an order never fed")
	}
	st := h.ReadModelState("summary", "1")
	if keys := slices.Sorted(maps.Keys(st.Children["shop.public.items"])); !reflect.DeepEqual(keys, []string{"line=1,order_id=1", "line=2,order_id=1"}) {
		t.Fatalf("child keys %v", keys)
	}
	// Four rows made the document: the first item, the order, the
	// customer's row joining, the second item.
	if st.Revision != 4 {
		t.Fatalf("revision %d, want 4", st.Revision)
	}
	if h.ReadModelState("summary", "9") != nil {
		t.Fatal("a state for an order never fed")
	}
}

// TestReadModelReferenceReachesEveryDocument: a customer's rename reaches
// each of their orders, and an order that moves to another customer leaves
// the first one's.
func TestReadModelReferenceReachesEveryDocument(t *testing.T) {
	h := topotest.New(t, topologies.New("summaries", summaryModel()))
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
	if got := documents(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	cs.Insert(customer{ID: 8, Name: "Linus T."})
	want["2"] = summary{ID: 2, Status: "paid", Customer: "Linus T."}
	want["3"] = summary{ID: 3, Status: "new", Customer: "Linus T."}
	if got := documents(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the customer came back: documents %+v, want %+v", got, want)
	}
}

// TestReadModelChildMovesAndDeletes: a child row whose parent changes
// leaves one document for another; deleted rows leave their documents, and
// a deleted order's document is gone for good.
func TestReadModelChildMovesAndDeletes(t *testing.T) {
	h := topotest.New(t, topologies.New("summaries", summaryModel()))
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
	if got := topotest.ReadModelDocuments[summary](h2, "summary"); got["1"].Items != 1 || got["2"].Items != 0 {
		t.Fatalf("before the move: %+v", got)
	}
	is2.Update(item{OrderID: 9, Line: 1, Qty: 2})
	if got := topotest.ReadModelDocuments[summary](h2, "summary"); got["1"].Items != 0 || got["2"].Items != 1 {
		t.Fatalf("after the move: %+v", got)
	}
	is2.Delete(item{OrderID: 9, Line: 1})
	if got := topotest.ReadModelDocuments[summary](h2, "summary"); got["1"].Items != 0 || got["2"].Items != 0 {
		t.Fatalf("after the delete: %+v", got)
	}

	is.Delete(item{OrderID: 1, Line: 1})
	os.Delete(order{ID: 2})
	if got, want := documents(h), map[string]summary{"1": {ID: 1, Status: "new"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("documents %+v, want %+v", got, want)
	}
	// The deleted order keeps its state, without a document, so that a
	// replay does not bring it back.
	if st := h.ReadModelState("summary", "2"); st == nil || st.Document != nil || st.Root == nil || st.Root.Row != nil {
		t.Fatalf("state of the deleted order: %+v", st)
	}
	h.Replay()
	if got := documents(h); len(got) != 1 {
		t.Fatalf("after a replay: documents %+v", got)
	}
}

// TestReadModelRedeliveryAndReplay: every change delivered again, and a
// replay of every topic, leave every state as it was, and count as
// duplicates of the model stage.
func TestReadModelRedeliveryAndReplay(t *testing.T) {
	h := topotest.New(t, topologies.New("summaries", summaryModel()))
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
		all := map[string]*topologies.ModelState{}
		for _, k := range []string{"1", "2"} {
			all[k] = h.ReadModelState("summary", k)
		}
		b, err := json.Marshal(all)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before, docs, stats := states(), documents(h), h.Stats()
	if want := map[string]summary{"1": {ID: 1, Status: "paid", Customer: "Linus", Items: 1, Qty: 4}}; !reflect.DeepEqual(docs, want) {
		t.Fatalf("documents %+v, want %+v", docs, want)
	}
	if stats.Duplicates != 0 {
		t.Fatalf("stats %+v before any redelivery", stats)
	}
	h.Redeliver(sent...)
	// Only the root rows reach the model stage again: the index stage drops
	// the children's and references' changes it has applied, uncounted.
	if got := h.Stats(); got.Duplicates != 4 || got.Changes != stats.Changes+4 {
		t.Fatalf("after a redelivery: stats %+v, were %+v", got, stats)
	}
	h.Replay()
	if after := states(); after != before {
		t.Fatalf("states changed\nbefore %s\nafter  %s", before, after)
	}
	if got := documents(h); !maps.Equal(got, docs) {
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
	h := topotest.New(t, topologies.New("summaries", model, topologies.IndexReadModel[summary](model, "summaries", nil)))
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
		st := h.ReadModelState("summary", key)
		if !ok || d.Version != st.Revision || d.Position != st.Version || string(d.Source) != string(st.Document) {
			t.Fatalf("document %s %+v (%s), state revision %d version %s %s", key, d, d.Source, st.Revision, st.Version, st.Document)
		}
		if want, _ := topotest.ReadModelDocument[summary](h, "summary", key); d.Value != want {
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

// TestReadModelAccessorsFailTheTest: a read model the topology lacks, or
// the wrong document type, fails the test.
func TestReadModelAccessorsFailTheTest(t *testing.T) {
	topo := func() *topologies.Topology { return topologies.New("summaries", summaryModel()) }
	for _, tc := range []struct {
		name string
		f    func(t topotest.T)
		want string
	}{
		{"no such read model", func(t topotest.T) {
			topotest.ReadModelDocuments[summary](topotest.New(t, topo()), "other")
		}, "topology summaries has no read model other (it has: summary)"},
		{"another document type", func(t topotest.T) {
			h := topotest.New(t, topo())
			topotest.Table(h, orders).Insert(newOrder(1, 7, "new", 10))
			topotest.ReadModelDocuments[order](h, "summary")
		}, "read model summary keeps documents of type *topotest_test.summary, not *topotest_test.order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := failure(tc.f); !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q, want it to contain %q", msg, tc.want)
			}
		})
	}
}
