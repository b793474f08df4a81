package topotest_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// TestMarkersOfDeletedRowsAreCompacted: a deleted order leaves markers in
// both stages of the read model; within the retention a late older change
// of it changes nothing, and a sweep drops nothing; after the retention a
// sweep drops them (a live order keeps its state), and the same late change
// then brings the order back, as documented.
func TestMarkersOfDeletedRowsAreCompacted(t *testing.T) {
	model, topo := summaries()
	h := topotest.New(t, topo)
	os, is, cs := feeds(h)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := topotest.CommittedAt(t0)
	cs.Insert(customer{ID: 7, Name: "Ada"}, at)
	created := os.Insert(newOrder(1, 7, "new", 10), at)
	is.Insert(item{OrderID: 1, Line: 1, Qty: 2}, at)
	os.Insert(newOrder(2, 7, "new", 20), at)
	is.Delete(item{OrderID: 1, Line: 1}, at)
	os.Delete(order{ID: 1}, at)

	if st, ok := topotest.ReadModelStateOf(h, model, "1"); !ok || !st.RootDeleted {
		t.Fatalf("state of the deleted order: %+v, %v; want its marker", st, ok)
	}
	h.Redeliver(created)
	if _, ok := topotest.ReadModelDocument(h, model, "1"); ok {
		t.Fatal("a late insert brought the deleted order back while its marker was kept")
	}
	retention := 2 * time.Hour
	h.CompactMarkers(t0.Add(time.Hour), retention)
	if n := h.Stats().Compacted; n != 0 {
		t.Fatalf("%d keys compacted within the retention", n)
	}
	if _, ok := topotest.ReadModelStateOf(h, model, "1"); !ok {
		t.Fatal("the marker went within the retention")
	}

	h.CompactMarkers(t0.Add(3*time.Hour), retention)
	// The model stage's state of order 1, the join stage's of the order and
	// of its item: three keys.
	if n := h.Stats().Compacted; n != 3 {
		t.Fatalf("%d keys compacted after the retention, want 3", n)
	}
	if st, ok := topotest.ReadModelStateOf(h, model, "1"); ok {
		t.Fatalf("the deleted order's marker is still there: %+v", st)
	}
	want := map[string]summary{"2": {ID: 2, Status: "new", Customer: "Ada"}}
	if got := topotest.ReadModelDocuments(h, model); !reflect.DeepEqual(got, want) {
		t.Fatalf("documents after compaction %+v, want %+v", got, want)
	}
	h.CompactMarkers(t0.Add(4*time.Hour), retention)
	if n := h.Stats().Compacted; n != 3 {
		t.Fatalf("a second sweep compacted %d keys more", n-3)
	}
	h.Redeliver(created)
	if got, ok := topotest.ReadModelDocument(h, model, "1"); !ok || got.Status != "new" {
		t.Fatalf("a change older than the retention, after compaction: document %+v, %v; want the order back", got, ok)
	}
}

// TestProjectionDropsDeletedAggregatesAfterRetention: an OnDelete event
// leaves its aggregate's entry in the projection's table until the
// retention has passed; then a sweep drops it, the state stays as it is,
// and the table no longer grows with the deleted order.
func TestProjectionDropsDeletedAggregatesAfterRetention(t *testing.T) {
	p := perCustomerProjectionWith(topologies.OnDelete[perCustomer, OrderRemoved])
	h := topotest.New(t, topologies.New("per-customer", topologies.Events(orders, orderEvents, deriveOrderEvents), p))
	rows := topotest.Table(h, orders)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := topotest.CommittedAt(t0)
	rows.Insert(newOrder(1, 7, "new", 10), at)
	rows.Insert(newOrder(2, 7, "new", 20), at)
	rows.Delete(order{ID: 2}, at)
	before := topotest.ProjectionTable(h, p)["7"]
	h.CompactMarkers(t0.Add(time.Minute), time.Hour)
	if got := topotest.ProjectionTable(h, p)["7"]; string(got) != string(before) || h.Stats().Compacted != 0 {
		t.Fatalf("within the retention the table changed: %s, was %s", got, before)
	}
	h.CompactMarkers(t0.Add(2*time.Hour), time.Hour)
	after := topotest.ProjectionTable(h, p)["7"]
	if h.Stats().Compacted != 1 || len(after) >= len(before) {
		t.Fatalf("after the retention: compacted %d, table value %s, was %s", h.Stats().Compacted, after, before)
	}
	want := perCustomer{Orders: map[string]string{"1": "new"}}
	if got, _ := topotest.ProjectionState(h, p, "7"); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after compaction %+v, want %+v", got, want)
	}
}
