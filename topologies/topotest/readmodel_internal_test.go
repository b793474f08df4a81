package topotest

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/cdcflow/cdcflow/topologies"
)

// TestChildRowsAreNamedByTheirKeyColumns: the model stage keeps a child row
// under its key columns in name order, from the record's key, as the
// processor names it.
func TestChildRowsAreNamedByTheirKeyColumns(t *testing.T) {
	type order struct{ ID int64 }
	type item struct {
		OrderID int64
		Line    int64
	}
	type lines struct{ N int }
	orders := topologies.TableOf[order]("shop", "public", "orders")
	items := topologies.TableOf[item]("shop", "public", "items")
	model := topologies.ReadModel[lines]("lines",
		topologies.Root(orders, func(o order) string { return strconv.FormatInt(o.ID, 10) }, func(*lines, order) {}),
		topologies.Children(items, func(i item) string { return strconv.FormatInt(i.OrderID, 10) }, func(l *lines, rows []item) { l.N = len(rows) }))
	h := New(t, topologies.New("lines", model))
	is := Table(h, items, Key("order_id", "line"))
	is.Insert(item{OrderID: 1, Line: 1})
	Table(h, orders).Insert(order{ID: 1})
	is.Insert(item{OrderID: 1, Line: 2})

	st := h.readModel("lines").model["1"]
	if keys := slices.Sorted(maps.Keys(st.Children["shop.public.items"])); !reflect.DeepEqual(keys, []string{"line=1,order_id=1", "line=2,order_id=1"}) {
		t.Fatalf("child keys %v", keys)
	}
	if doc, ok := ReadModelDocument(h, model, "1"); !ok || doc.N != 2 {
		t.Fatalf("document %+v, %v", doc, ok)
	}
}
