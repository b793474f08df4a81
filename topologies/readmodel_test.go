package topologies_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

type customerRow struct {
	ID   int64
	Name string
}

// orderSummary is a read model's document: an order with its customer's
// name.
type orderSummary struct {
	ID       int64  `json:"id"`
	Customer string `json:"customer"`
}

func summaryModel() *topologies.ReadModelNode[orderSummary] {
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	return topologies.ReadModel[orderSummary]("summary",
		topologies.Root(topologies.TableOf[order]("shop", "public", "orders"), func(o order) string { return id(o.ID) },
			func(s *orderSummary, o order) { s.ID = o.ID }),
		topologies.Reference(topologies.TableOf[customerRow]("shop", "public", "customers"), func(c customerRow) string { return id(c.ID) },
			func(o order) string { return id(int64(o.Customer)) }, func(s *orderSummary, c customerRow) { s.Customer = c.Name }))
}

// TestReadModelDocument: a read model's handle keeps its document type, and
// decodes the documents its table holds into it.
func TestReadModelDocument(t *testing.T) {
	model := summaryModel()
	if model.Name() != "summary" {
		t.Fatalf("Name = %q", model.Name())
	}
	doc, err := model.Document(json.RawMessage(`{"id":7,"customer":"Ada"}`))
	if err != nil || doc != (orderSummary{ID: 7, Customer: "Ada"}) {
		t.Fatalf("Document = %+v, %v", doc, err)
	}
	if _, err := model.Document(json.RawMessage(`{"id":"seven"}`)); err == nil || !strings.Contains(err.Error(), "read model summary: decode document as topologies_test.orderSummary") {
		t.Fatalf("a document of another shape: %v", err)
	}
	// The runtime form decodes a kept state's document into a *V, and
	// reports none for a state without one (its root row deleted).
	rm := model.Engine().(*engine.ReadModel)
	if got, ok, err := rm.Document(&engine.ModelState{Document: json.RawMessage(`{"id":7}`)}); err != nil || !ok || !reflect.DeepEqual(got, &orderSummary{ID: 7}) {
		t.Fatalf("engine Document = %#v, %v, %v", got, ok, err)
	}
	if _, ok, err := rm.Document(&engine.ModelState{}); ok || err != nil {
		t.Fatalf("engine Document of a state without a document: %v, %v", ok, err)
	}
	if s := topologies.New("summaries", model).String(); !strings.Contains(s, "read model summary (documents as topologies_test.orderSummary) keyed by shop.public.orders (rows as topologies_test.order)\n    reference shop.public.customers (rows as topologies_test.customerRow)") {
		t.Fatalf("String = %q", s)
	}
}

// TestIndexReadModelDocument: a search index over a read model makes its
// document from the read model's, as a value of the read model's type.
func TestIndexReadModelDocument(t *testing.T) {
	model := summaryModel()
	type searchDoc struct {
		Title string `json:"title"`
	}
	title := func(s orderSummary) any { return searchDoc{Title: strconv.FormatInt(s.ID, 10) + " for " + s.Customer} }
	state := &engine.ModelState{Document: json.RawMessage(`{"id":7,"customer":"Ada"}`), Revision: 3}
	for _, tc := range []struct {
		name    string
		node    *topologies.ReadModelIndexNode
		state   *engine.ModelState
		want    any
		wantOK  bool
		wantErr string
	}{
		{"a document function", topologies.IndexReadModel(model, "summaries", title), state, searchDoc{Title: "7 for Ada"}, true, ""},
		{"the read model's document as it is", topologies.IndexReadModel(model, "summaries", nil), state, orderSummary{ID: 7, Customer: "Ada"}, true, ""},
		{"no document", topologies.IndexReadModel(model, "summaries", title), &engine.ModelState{Revision: 4}, nil, false, ""},
		{"no state", topologies.IndexReadModel(model, "summaries", title), nil, nil, false, ""},
		{"a document that does not decode", topologies.IndexReadModel(model, "summaries", title), &engine.ModelState{Document: json.RawMessage(`[]`)},
			nil, false, "read model summary: decode document as topologies_test.orderSummary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := tc.node.Engine().(*engine.ReadModelIndex).Document(tc.state)
			if (err != nil) != (tc.wantErr != "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				if ok {
					t.Fatal("ok with an error")
				}
				return
			}
			if ok != tc.wantOK || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Document = %#v, %v; want %#v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestIndexReadModelValidation(t *testing.T) {
	model := summaryModel()
	for _, tc := range []struct {
		name    string
		topo    *topologies.Topology
		wantErr []string // nil for valid
	}{
		{"valid", topologies.New("summaries", model, topologies.IndexReadModel(model, "summaries", nil)), nil},
		{"a nil read model", topologies.New("summaries", model, topologies.IndexReadModel[orderSummary](nil, "summaries", nil)),
			[]string{"search index summaries over read model <nil>: the read model is nil"}},
		{"a read model the topology lacks", topologies.New("summaries", topologies.IndexReadModel(model, "summaries", nil)),
			[]string{"search index summaries over read model summary: the read model is not a node of the topology; add it"}},
		{"two indexes over one read model", topologies.New("summaries", model, topologies.IndexReadModel(model, "a", nil), topologies.IndexReadModel(model, "b", nil)),
			[]string{"indexes read model summary twice"}},
		{"a bad index name and mapping", topologies.New("summaries", model, topologies.IndexReadModel(model, "Summaries", nil, topologies.WithMapping("{"))),
			[]string{`index name "Summaries": use lower case only`, "mapping is not a JSON object"}},
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
}
