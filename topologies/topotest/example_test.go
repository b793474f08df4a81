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
	type OrderPaid struct{ OrderID int64 }
	table := topologies.TableOf[Order]("shop", "public", "orders")
	topo := topologies.New("order-events", topologies.Events(table, "events.Order",
		func(c topologies.Change[Order]) []topologies.Event {
			if c.Op == change.OpUpdate && c.Before != nil && c.Before.Status != "paid" && c.After.Status == "paid" {
				return []topologies.Event{{Type: "OrderPaid", AggregateID: strconv.FormatInt(c.After.ID, 10), Data: OrderPaid{c.After.ID}}}
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
	// {Changes:5 Duplicates:3 DeadLetters:0}
}
