package orders_test

import (
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// TestSearchTopology unit-tests the search topology without any service:
// the document an order row becomes, and the id of a deleted order.
func TestSearchTopology(t *testing.T) {
	topo := orders.Search("shop", "public", "orders")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	node := topo.Nodes[0].Engine().(*engine.SearchIndex)
	if node.Input != "shop.public.orders" || node.Index != "orders" || node.Mapping != orders.SearchMapping {
		t.Fatalf("node %s %s", node.Input, node.Index)
	}
	id, doc, err := node.Document(change.Row{"id": int64(7), "customer_id": int32(3), "status": "paid",
		"amount": big.NewRat(2050, 100), "created_at": time.Date(2026, 11, 21, 23, 30, 0, 0, time.FixedZone("x", -3600))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":7,"customer_id":3,"status":"paid","amount":"20.50","created_at":"2026-11-22T00:30:00Z"}`
	if id != "7" || string(got) != want {
		t.Fatalf("Document = %s %s, want 7 %s", id, got, want)
	}
	// A delete carries the key columns only (REPLICA IDENTITY DEFAULT).
	if id, _, err := node.Document(change.Row{"id": int64(7)}); err != nil || id != "7" {
		t.Fatalf("a delete's id = %q, %v", id, err)
	}
}

// TestSearchIndexFollowsTheTable runs the search topology in the topotest
// harness: one document per order, gone with the order, and a change
// delivered late never overwrites a newer document.
func TestSearchIndexFollowsTheTable(t *testing.T) {
	h := topotest.New(t, orders.Search("shop", "public", "orders"))
	rows := topotest.Table(h, topologies.TableOf[orders.Order]("shop", "public", "orders"))
	created := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	o := orders.Order{ID: 7, CustomerID: 3, Status: "new", Amount: big.NewRat(2050, 100), CreatedAt: created}
	first := rows.Insert(o)
	o.Status = "paid"
	rows.Update(o)
	rows.Insert(orders.Order{ID: 8, CustomerID: 4, Status: "new", Amount: big.NewRat(1, 1), CreatedAt: created})
	h.Redeliver(first) // late: older than the document

	d, ok := h.Document("orders", "7")
	want := `{"id":7,"customer_id":3,"status":"paid","amount":"20.50","created_at":"2026-11-21T08:00:00Z"}`
	if !ok || string(d.Source) != want {
		t.Fatalf("document 7 = %s, %v; want %s", d.Source, ok, want)
	}
	rows.Delete(orders.Order{ID: 8})
	if docs := h.Documents("orders"); len(docs) != 1 || docs[0].ID != "7" {
		t.Fatalf("documents %+v, want order 7's only", docs)
	}
	if s := h.Stats(); s.Duplicates != 1 || s.DeadLetters != 0 {
		t.Fatalf("stats %+v", s)
	}
}
