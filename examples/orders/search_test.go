package orders_test

import (
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/topologies"
)

// TestSearchTopology unit-tests the search topology without any service:
// the document an order row becomes, and the id of a deleted order.
func TestSearchTopology(t *testing.T) {
	topo := orders.Search("shop", "public", "orders")
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	node := topo.Nodes[0].(*topologies.IndexNode)
	if node.Input() != "shop.public.orders" || node.IndexName() != "orders" || node.Mapping() != orders.SearchMapping {
		t.Fatalf("node %s %s", node.Input(), node.IndexName())
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
