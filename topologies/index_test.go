package topologies_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// searchIndex returns the runtime form of an Index node: its Document is
// what the processor calls for each change.
func searchIndex(n *topologies.IndexNode) *engine.SearchIndex {
	return n.Engine().(*engine.SearchIndex)
}

type orderDoc struct {
	ID       int64 `json:"id"`
	Customer int32 `json:"customer"`
}

func orderDocument(o order) (string, any) {
	return strconv.FormatInt(o.ID, 10), orderDoc{ID: o.ID, Customer: o.Customer}
}

func TestIndexValidation(t *testing.T) {
	table := topologies.TableOf[order]("shop", "public", "orders")
	for _, tc := range []struct {
		name    string
		node    *topologies.IndexNode
		wantErr string // "" for valid
	}{
		{"valid", topologies.Index(table, "orders-v1.2", orderDocument), ""},
		{"valid with mapping", topologies.Index(table, "orders", orderDocument, topologies.WithMapping(`{"properties":{"id":{"type":"long"}}}`)), ""},
		{"empty name", topologies.Index(table, "", orderDocument), "index name is empty"},
		{"upper case", topologies.Index(table, "Orders", orderDocument), "lower case"},
		{"space", topologies.Index(table, "my orders", orderDocument), "must not contain"},
		{"slash", topologies.Index(table, "a/b", orderDocument), "must not contain"},
		{"star", topologies.Index(table, "orders*", orderDocument), "must not contain"},
		{"comma", topologies.Index(table, "a,b", orderDocument), "must not contain"},
		{"hash", topologies.Index(table, "a#b", orderDocument), "must not contain"},
		{"quote", topologies.Index(table, `a"b`, orderDocument), "must not contain"},
		{"leading dash", topologies.Index(table, "-orders", orderDocument), "must not start"},
		{"leading underscore", topologies.Index(table, "_orders", orderDocument), "must not start"},
		{"leading plus", topologies.Index(table, "+orders", orderDocument), "must not start"},
		{"dot", topologies.Index(table, ".", orderDocument), "not allowed"},
		{"too long", topologies.Index(table, strings.Repeat("a", 256), orderDocument), "longer than 255"},
		{"nil document", topologies.Index[order](table, "orders", nil), "document function is nil"},
		{"bad mapping", topologies.Index(table, "orders", orderDocument, topologies.WithMapping(`{"properties":`)), "mapping is not a JSON object"},
		{"non-struct rows", topologies.Index(topologies.TableOf[int]("shop", "public", "orders"), "orders", func(int) (string, any) { return "", nil }), "is not a struct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := topologies.New("search", tc.node).Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestIndexReportsEveryMistakeAtOnce(t *testing.T) {
	node := topologies.Index[order](topologies.TableOf[order]("shop", "public", "orders"), "Bad Name", nil)
	err := topologies.New("search", node).Validate()
	if err == nil || !strings.Contains(err.Error(), "lower case") || !strings.Contains(err.Error(), "document function is nil") {
		t.Fatalf("Validate = %v", err)
	}
	if _, _, err := searchIndex(node).Document(change.Row{"id": int64(1)}); err == nil {
		t.Fatal("an invalid node made a document")
	}
}

func TestIndexDocument(t *testing.T) {
	node := topologies.Index(topologies.TableOf[order]("shop", "public", "orders"), "orders", orderDocument)
	if x := searchIndex(node); x.Input != "shop.public.orders" || x.Index != "orders" || x.Mapping != "" {
		t.Fatalf("node = %s %s %q", x.Input, x.Index, x.Mapping)
	}
	const mapping = `{"properties":{"id":{"type":"long"}}}`
	if x := searchIndex(topologies.Index(topologies.TableOf[order]("shop", "public", "orders"), "orders", orderDocument, topologies.WithMapping(mapping))); x.Mapping != mapping {
		t.Fatalf("mapping %q, want %q", x.Mapping, mapping)
	}
	for _, tc := range []struct {
		name    string
		row     change.Row
		wantID  string
		wantDoc any
		wantErr string
	}{
		{"a row", change.Row{"id": int64(7), "customer_id": int32(4), "created_at": time.Now()}, "7", orderDoc{ID: 7, Customer: 4}, ""},
		{"a delete's key columns", change.Row{"id": int64(7)}, "7", orderDoc{ID: 7}, ""},
		{"a mistyped column", change.Row{"id": "seven"}, "", nil, "column id into field ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, doc, err := searchIndex(node).Document(tc.row)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.wantID || !reflect.DeepEqual(doc, tc.wantDoc) {
				t.Fatalf("Document = %q %+v, want %q %+v", id, doc, tc.wantID, tc.wantDoc)
			}
		})
	}
	empty := topologies.Index(topologies.TableOf[order]("shop", "public", "orders"), "orders", func(order) (string, any) { return "", struct{}{} })
	if _, _, err := searchIndex(empty).Document(change.Row{"id": int64(1)}); err == nil || !strings.Contains(err.Error(), "empty id") {
		t.Fatalf("empty id: %v", err)
	}
	if s := topologies.New("search", node).String(); !strings.Contains(s, "search index orders over shop.public.orders") {
		t.Fatalf("String = %q", s)
	}
}
