package topologies_test

import (
	"fmt"
	"log"
	"math/big"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// Order is a row of the orders table: CustomerID reads the column
// customer_id, Amount a numeric, CreatedAt a timestamptz.
type Order struct {
	ID         int64
	CustomerID int64
	Status     string
	Amount     *big.Rat
	CreatedAt  time.Time
}

// OrderPaid is a domain event: its type is the struct's name, OrderPaid.
type OrderPaid struct {
	OrderID int64
	Amount  *big.Rat
}

// orderTopic is the event topic of orders, and the event types it carries.
var orderTopic = topologies.EventTopicOf("events.Order", OrderPaid{})

func ordersPerStatus(o Order) []topologies.Sample {
	return []topologies.Sample{{Series: "orders_per_status", Bucket: o.Status, Value: 1}}
}

func orderEvents(c topologies.Change[Order]) []topologies.Event {
	if c.Op == change.OpUpdate && c.Before != nil && c.Before.Status != "paid" && c.After.Status == "paid" {
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.After.ID, 10),
			Data: OrderPaid{OrderID: c.After.ID, Amount: c.After.Amount}}}
	}
	return nil
}

// A topology is declared as a value, validated and printed before anything
// connects.
func Example() {
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	payments := topologies.TableOf[Order]("shop", "public", "payments")
	topo := topologies.New("order-metrics",
		topologies.Metrics(orders, ordersPerStatus),
		topologies.Events(payments, orderTopic, orderEvents),
	)
	if err := topo.Validate(); err != nil {
		log.Fatal(err)
	}
	fmt.Print(topo)
	// Output:
	// topology order-metrics
	//   metrics over shop.public.orders (rows as topologies_test.Order)
	//   events from shop.public.payments (rows as topologies_test.Order) to events.Order
}

// Validate reports every mistake at once.
func ExampleTopology_Validate() {
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	topo := topologies.New("Order Metrics",
		topologies.Metrics(orders, ordersPerStatus),
		topologies.Index(orders, "Orders", nil),
		topologies.Events(topologies.TableOf[Order]("shop", "public", "payments"), topologies.EventTopicOf("events/Order", OrderPaid{}), orderEvents),
		topologies.Metrics(orders, ordersPerStatus),
	)
	fmt.Println(topo.Validate())
	// Output:
	// topology name "Order Metrics": use lower-case letters, digits and '-', starting with a letter
	// topology Order Metrics: search index Orders over shop.public.orders: index name "Orders": use lower case only
	// document function is nil
	// topology Order Metrics: events from shop.public.payments: event topic "events/Order" must be dot-separated names (it is the events' Avro namespace), e.g. events.Order
	// topology Order Metrics has two Metrics nodes of shop.public.orders; they would share the state kept per row: make them one, or put one in another topology
}

// The same change, aggregate and event type always give the same id (the
// first 16 bytes of the SHA-256 of "<position>|<aggregate>|<type>", in hex),
// so a redelivered or replayed change yields an event consumers recognise.
func ExampleEventID() {
	pos := change.Position{CommitLSN: 0x16B374D848, Index: 2}
	fmt.Println(topologies.EventID(pos, "42", "OrderPaid"))
	fmt.Println(topologies.EventID(pos, "42", "OrderPaid") == topologies.EventID(pos, "42", "OrderPaid"))
	fmt.Println(topologies.EventID(pos, "42", "OrderShipped") == topologies.EventID(pos, "42", "OrderPaid"))
	// Output:
	// 3e6e8af362ef37ead8374c91572e5ffc
	// true
	// false
}

// An event's type is the name of its data's Go type, and the event topic
// declares its types by value: a derive function cannot misspell one.
func ExampleEvent_Type() {
	e := topologies.Event{AggregateID: "42", Data: OrderPaid{OrderID: 42, Amount: big.NewRat(25, 2)}}
	fmt.Println(e.Type())
	fmt.Println(orderTopic.Topic, orderTopic.Types())
	// Output:
	// OrderPaid
	// events.Order [OrderPaid]
}

// Row is the change.Row capture sends for a row: what a test feeds a node.
func ExampleTable_Row() {
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	row, err := orders.Row(Order{ID: 7, CustomerID: 3, Status: "paid", Amount: big.NewRat(2050, 100),
		CreatedAt: time.Date(2026, 11, 21, 9, 30, 0, 0, time.FixedZone("CET", 3600))})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(row)
	// Output:
	// map[amount:41/2 created_at:2026-11-21 08:30:00 +0000 UTC customer_id:3 id:7 status:paid]
}

// Package topotest runs a topology in memory, as a unit test would: typed
// changes in, what the processors would write out.
func Example_testing() {
	topo := topologies.New("order-metrics",
		topologies.Metrics(topologies.TableOf[Order]("shop", "public", "orders"), ordersPerStatus))

	// A test passes its *testing.T; anything with a Fatalf method will do.
	h := topotest.New(log.Default(), topo)
	orders := topotest.Table(h, topologies.TableOf[Order]("shop", "public", "orders"))
	o := Order{ID: 1, Status: "new", Amount: big.NewRat(10, 1)}
	orders.Insert(o)
	orders.Insert(Order{ID: 2, Status: "new", Amount: big.NewRat(5, 1)})
	o.Status = "paid"
	paid := orders.Update(o)
	fmt.Println(h.Series("orders_per_status"))

	h.Redeliver(paid) // Kafka delivers at least once: nothing moves
	fmt.Println(h.Series("orders_per_status"), h.Stats().Duplicates)
	// Output:
	// map[new:1 paid:1]
	// map[new:1 paid:1] 1
}
