package topotest_test

import (
	"fmt"
	"log"
	"strconv"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// An Events topology derives OrderPaid from a status transition. Updates
// carry no before image (REPLICA IDENTITY DEFAULT); the harness, as the
// processor, keeps each order's last version for Before, and derives every
// change once.
func Example() {
	type Order struct {
		ID     int64
		Status string
	}
	type OrderPaid struct{ OrderID int64 } // the event type OrderPaid
	table := topologies.TableOf[Order]("shop", "public", "orders")
	topo := topologies.New("order-events", topologies.Events(table, topologies.EventTopicOf("events.Order", OrderPaid{}),
		func(c topologies.Change[Order]) []topologies.Event {
			if c.Op == change.OpUpdate && c.Before != nil && c.Before.Status != "paid" && c.After.Status == "paid" {
				return []topologies.Event{{AggregateID: strconv.FormatInt(c.After.ID, 10), Data: OrderPaid{c.After.ID}}}
			}
			return nil
		}))

	h := topotest.New(log.Default(), topo) // in a test: topotest.New(t, topo)
	orders := topotest.Table(h, table)
	orders.Insert(Order{ID: 42, Status: "new"})
	paid := orders.Update(Order{ID: 42, Status: "paid"})
	h.Redeliver(paid)
	h.Replay()
	for _, e := range h.Events() {
		fmt.Println(e.Topic, e.Type, e.AggregateID, e.Position, e.Data)
	}
	fmt.Printf("%+v\n", h.Stats())
	// Output:
	// events.Order OrderPaid 42 0000000000000002/00000001 {42}
	// {Changes:5 Duplicates:3 DeadLetters:0 Late:0 Compacted:0}
}

// A read model keeps an order summary: the order, its customer's name and
// how many line items it has. Rows arrive in any order; a customer's rename
// reaches every order of theirs, and a replay changes nothing.
func Example_readModel() {
	type Order struct {
		ID         int64
		CustomerID int64
	}
	type Item struct {
		ID      int64
		OrderID int64
	}
	type Customer struct {
		ID   int64
		Name string
	}
	type Summary struct {
		Customer string
		Items    int
	}
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	items := topologies.TableOf[Item]("shop", "public", "order_items")
	customers := topologies.TableOf[Customer]("shop", "public", "customers")
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	summary := topologies.ReadModel[Summary]("summary",
		topologies.Root(orders, func(o Order) string { return id(o.ID) }, func(*Summary, Order) {}),
		topologies.Children(items, func(i Item) string { return id(i.OrderID) }, func(s *Summary, rows []Item) { s.Items = len(rows) }),
		topologies.Reference(customers, func(c Customer) string { return id(c.ID) }, func(o Order) string { return id(o.CustomerID) },
			func(s *Summary, c Customer) { s.Customer = c.Name }))
	topo := topologies.New("summaries", summary)

	h := topotest.New(log.Default(), topo) // in a test: topotest.New(t, topo)
	topotest.Table(h, items).Insert(Item{ID: 1, OrderID: 10})
	topotest.Table(h, orders).Insert(Order{ID: 10, CustomerID: 7})
	topotest.Table(h, orders).Insert(Order{ID: 11, CustomerID: 7})
	topotest.Table(h, customers).Insert(Customer{ID: 7, Name: "Ada"})
	topotest.Table(h, customers).Update(Customer{ID: 7, Name: "Ada Lovelace"})
	h.Replay()
	fmt.Println(topotest.ReadModelDocuments(h, summary))
	st, _ := topotest.ReadModelStateOf(h, summary, "10")
	fmt.Println(st.Revision)
	// Output:
	// map[10:{Ada Lovelace 1} 11:{Ada Lovelace 0}]
	// 4
}
