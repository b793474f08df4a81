package engine_test

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

type order struct {
	ID       int64
	Customer int64
	Status   string
}

type item struct {
	ID      int64
	OrderID int64 `cdc:"order_id"`
	Product string
}

type customer struct {
	ID   int64
	Name string
}

type summary struct {
	ID       int64    `json:"id"`
	Status   string   `json:"status"`
	Customer string   `json:"customer"`
	Products []string `json:"products"` // in the order the read model applies its children
}

var (
	orders    = topologies.TableOf[order]("shop", "public", "orders")
	items     = topologies.TableOf[item]("shop", "public", "items")
	customers = topologies.TableOf[customer]("shop", "public", "customers")
)

func id(n int64) string { return strconv.FormatInt(n, 10) }

// TestRebuildEqualsTheStagesAfterAnyHistory runs random histories of
// inserts, updates (a line item moving to another order, an order to
// another customer, a customer renamed) and deletes through the read
// model's two stages in the harness, then rebuilds the documents from the
// rows the tables hold at the end, and finds them equal.
func TestRebuildEqualsTheStagesAfterAnyHistory(t *testing.T) {
	model := topologies.ReadModel[summary]("summary",
		topologies.Root(orders, func(o order) string { return id(o.ID) },
			func(s *summary, o order) { s.ID, s.Status = o.ID, o.Status }),
		topologies.Children(items, func(i item) string { return id(i.OrderID) },
			func(s *summary, rows []item) {
				s.Products = nil
				for _, r := range rows {
					s.Products = append(s.Products, r.Product)
				}
			}),
		topologies.Reference(customers, func(c customer) string { return id(c.ID) },
			func(o order) string { return id(o.Customer) },
			func(s *summary, c customer) { s.Customer = c.Name }))
	node := model.Engine().(*engine.ReadModel)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := topotest.New(t, topologies.New("shop", model))
		os, is, cs := newMirror(h, orders), newMirror(h, items), newMirror(h, customers)
		for range 300 {
			n := int64(1 + rng.IntN(12))
			switch rng.IntN(9) {
			case 0, 1:
				os.put(n, order{ID: n, Customer: int64(1 + rng.IntN(4)), Status: []string{"new", "paid"}[rng.IntN(2)]})
			case 2:
				os.delete(n)
			case 3, 4, 5:
				is.put(n, item{ID: n, OrderID: int64(1 + rng.IntN(14)), Product: "p" + id(int64(rng.IntN(100)))})
			case 6:
				is.delete(n)
			case 7:
				c := int64(1 + rng.IntN(5))
				cs.put(c, customer{ID: c, Name: "c" + id(int64(rng.IntN(100)))})
			case 8:
				cs.delete(int64(1 + rng.IntN(5)))
			}
		}
		rows := map[string][]engine.CurrentRow{}
		os.current(t, rows)
		is.current(t, rows)
		cs.current(t, rows)
		docs, err := node.Rebuild(rows)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]summary{}
		for key, raw := range docs {
			if got[key], err = model.Document(raw); err != nil {
				t.Fatal(err)
			}
		}
		if want := topotest.ReadModelDocuments(h, model); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: rebuilt\n%v\nthe stages hold\n%v", seed, got, want)
		}
	}
}

// mirror feeds a table's changes to the harness and keeps the rows the
// table holds, keyed by id.
type mirror[T any] struct {
	feed  *topotest.Rows[T]
	table topologies.Table[T]
	rows  map[int64]T
}

func newMirror[T any](h *topotest.Harness, table topologies.Table[T]) *mirror[T] {
	return &mirror[T]{feed: topotest.Table(h, table), table: table, rows: map[int64]T{}}
}

func (m *mirror[T]) put(id int64, v T) {
	if _, ok := m.rows[id]; ok {
		m.feed.Update(v)
	} else {
		m.feed.Insert(v)
	}
	m.rows[id] = v
}

func (m *mirror[T]) delete(id int64) {
	if v, ok := m.rows[id]; ok {
		m.feed.Delete(v)
		delete(m.rows, id)
	}
}

// current adds the rows the table holds to rows, as the source reads them.
func (m *mirror[T]) current(t *testing.T, rows map[string][]engine.CurrentRow) {
	for _, v := range m.rows {
		r, err := m.table.Row(v)
		if err != nil {
			t.Fatal(err)
		}
		rows[string(m.table.Topic)] = append(rows[string(m.table.Topic)], engine.CurrentRow{Key: change.Row{"id": r["id"]}, Row: r})
	}
}
