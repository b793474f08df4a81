package topotest_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

type orderDoc struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Amount string `json:"amount"`
}

func document(o order) (string, any) {
	doc := orderDoc{ID: o.ID, Status: o.Status}
	if o.Amount != nil {
		doc.Amount = o.Amount.FloatString(2)
	}
	return strconv.FormatInt(o.ID, 10), doc
}

func searchTopology() *topologies.Topology {
	return topologies.New("search", topologies.Index(orders, "orders", document))
}

func TestIndexKeepsOneDocumentPerRow(t *testing.T) {
	h := topotest.New(t, searchTopology())
	rows := topotest.Table(h, orders)
	rows.Read(newOrder(1, 7, "new", 10))
	rows.Insert(newOrder(2, 8, "new", 20))
	paid := rows.Update(newOrder(1, 7, "paid", 10))
	rows.Delete(order{ID: 2}) // the key columns only, as under REPLICA IDENTITY DEFAULT

	docs := h.Documents("orders")
	if len(docs) != 1 {
		t.Fatalf("documents %+v, want one", docs)
	}
	d := docs[0]
	if d.Index != "orders" || d.ID != "1" || d.Position != paid.Event.Position || d.Value != (orderDoc{1, "paid", "10.00"}) ||
		string(d.Source) != `{"id":1,"status":"paid","amount":"10.00"}` {
		t.Fatalf("document %+v (%s)", d, d.Source)
	}
	if got, ok := h.Document("orders", "1"); !ok || got.Position != d.Position {
		t.Fatalf("Document(orders, 1) = %+v, %v", got, ok)
	}
	if _, ok := h.Document("orders", "2"); ok {
		t.Fatal("the deleted order's document is there")
	}
	if _, ok := h.Document("other", "1"); ok {
		t.Fatal("an index nobody wrote holds a document")
	}
}

// TestIndexVersionsArePositions: a redelivered change, or one older than the
// document (or its delete), changes nothing.
func TestIndexVersionsArePositions(t *testing.T) {
	h := topotest.New(t, searchTopology())
	rows := topotest.Table(h, orders)
	created := rows.Insert(newOrder(1, 7, "new", 10))
	paid := rows.Update(newOrder(1, 7, "paid", 10))
	h.Redeliver(created, paid)
	if d, _ := h.Document("orders", "1"); d.Value.(orderDoc).Status != "paid" || d.Position != paid.Event.Position {
		t.Fatalf("after redelivery: %+v", d)
	}
	deleted := rows.Delete(order{ID: 1})
	h.Replay()
	if _, ok := h.Document("orders", "1"); ok {
		t.Fatal("a replay brought back a deleted document")
	}
	rows.Insert(newOrder(1, 7, "late", 10), topotest.At(paid.Event.Position)) // older than the delete
	if _, ok := h.Document("orders", "1"); ok {
		t.Fatal("a change older than the delete recreated the document")
	}
	rows.Insert(newOrder(1, 7, "again", 10))
	if d, ok := h.Document("orders", "1"); !ok || d.Value.(orderDoc).Status != "again" || d.Position.Compare(deleted.Event.Position) <= 0 {
		t.Fatalf("a new insert after the delete: %+v, %v", d, ok)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 10, Duplicates: 6}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestIndexSetsAsideWhatItCannotIndex: a change whose document cannot be
// made or is not a JSON object goes to the dead letters, and the node goes
// on.
func TestIndexSetsAsideWhatItCannotIndex(t *testing.T) {
	topo := topologies.New("search", topologies.Index(orders, "orders", func(o order) (string, any) {
		switch o.Status {
		case "no id":
			return "", orderDoc{}
		case "not an object":
			return strconv.FormatInt(o.ID, 10), o.Status
		}
		return document(o)
	}))
	h := topotest.New(t, topo)
	rows := topotest.Table(h, orders)
	noID := rows.Insert(newOrder(1, 7, "no id", 10))
	notObject := rows.Insert(newOrder(2, 7, "not an object", 10))
	rows.Insert(newOrder(3, 7, "new", 10))

	dead := h.DeadLetters()
	if len(dead) != 2 {
		t.Fatalf("dead letters %+v, want 2", dead)
	}
	for i, tc := range []struct {
		rec  topotest.Record
		want string
	}{
		{noID, "index change of public.orders into orders: document of change at 0000000000000001/00000001: the document function returned an empty id"},
		{notObject, "index change of public.orders into orders: document 2 is not a JSON object"},
	} {
		if dead[i].Record.Event.Position != tc.rec.Event.Position || !strings.Contains(dead[i].Err.Error(), tc.want) {
			t.Errorf("dead letter %d: %s: %v, want %s: %s", i, dead[i].Record.Event.Position, dead[i].Err, tc.rec.Event.Position, tc.want)
		}
	}
	if docs := h.Documents("orders"); len(docs) != 1 || docs[0].ID != "3" {
		t.Fatalf("documents %+v, want order 3's", docs)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 3, DeadLetters: 2}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// TestIndexDeleteWithoutBefore: a delete record without a before image (one
// built by hand) takes the document id from the record's key, as the
// processor does.
func TestIndexDeleteWithoutBefore(t *testing.T) {
	h := topotest.New(t, searchTopology())
	topotest.Table(h, orders).Insert(newOrder(4, 7, "new", 10))
	h.Redeliver(topotest.Record{Topic: string(orders.Topic), Key: change.Row{"id": int64(4)},
		Event: &change.Event{Op: change.OpDelete, Position: change.Position{CommitLSN: 100, Index: 1}}})
	if _, ok := h.Document("orders", "4"); ok {
		t.Fatal("the delete without a before image left the document")
	}
}
