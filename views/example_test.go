package views_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"

	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// OrderSummary is a read model: one JSON document per order, keyed by order
// id.
type OrderSummary struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// CustomerOrders is an index: one entry per customer, keyed by customer id.
type CustomerOrders struct {
	OrderIDs []int64 `json:"order_ids"`
}

// Keys returns the keys of the customer's orders in the summaries table.
func (c CustomerOrders) Keys() []string {
	keys := make([]string, len(c.OrderIDs))
	for i, id := range c.OrderIDs {
		keys[i] = strconv.FormatInt(id, 10)
	}
	return keys
}

// A query API over two read models on Kafka: the group tables of the
// processors "order-summaries" and "customer-orders".
func Example() {
	brokers := []string{"127.0.0.1:9092"}
	summaries, err := views.NewTable[OrderSummary](brokers, goka.GroupTable("order-summaries"), views.WithStateDir("/var/lib/cdcflow/views"))
	if err != nil {
		log.Fatal(err)
	}
	customers, err := views.NewTable[CustomerOrders](brokers, goka.GroupTable("customer-orders"), views.WithStateDir("/var/lib/cdcflow/views"))
	if err != nil {
		log.Fatal(err)
	}
	server, err := views.NewServer(views.ServerConfig{Addr: ":8080"}, summaries, customers)
	if err != nil {
		log.Fatal(err)
	}
	server.Handle("GET /order-summaries/{id}", views.Lookup(summaries, views.PathInt("id")))
	server.Handle("GET /customers/{id}/orders", views.FanOut(customers, views.PathInt("id"), CustomerOrders.Keys, summaries))
	if err := server.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// The same API on goka's in-memory tester, where a test writes the tables.
func ExampleServer_Handle() {
	tt := tester.New(exampleT{})
	summaries, _ := views.NewTable[OrderSummary](nil, "order-summaries-table", views.WithTester(tt))
	customers, _ := views.NewTable[CustomerOrders](nil, "customer-orders-table", views.WithTester(tt))
	server, _ := views.NewServer(views.ServerConfig{}, summaries, customers)
	server.Handle("GET /order-summaries/{id}", views.Lookup(summaries, views.PathInt("id")))
	server.Handle("GET /customers/{id}/orders", views.FanOut(customers, views.PathInt("id"), CustomerOrders.Keys, summaries))

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- server.Serve(ctx, ln) }()
	server.WaitReady(ctx)

	tt.Consume("order-summaries-table", "1", OrderSummary{ID: 1, Status: "paid"})
	tt.Consume("order-summaries-table", "2", OrderSummary{ID: 2, Status: "new"})
	tt.Consume("customer-orders-table", "7", CustomerOrders{OrderIDs: []int64{2, 1}})

	for _, path := range []string{"/readyz", "/order-summaries/1", "/order-summaries/3", "/order-summaries/one", "/customers/7/orders"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// /readyz 200 {"ready":true,"views":{"customer-orders-table":"recovered","order-summaries-table":"recovered"}}
	// /order-summaries/1 200 {"id":1,"status":"paid"}
	// /order-summaries/3 404 {"error":"key \"3\" not found in order-summaries-table"}
	// /order-summaries/one 400 {"error":"id \"one\" is not a decimal integer"}
	// /customers/7/orders 200 [{"id":2,"status":"new"},{"id":1,"status":"paid"}]
	// stopped: <nil>
}

// exampleT is what goka's tester needs of a test, for an example.
type exampleT struct{}

func (exampleT) Errorf(format string, args ...any) { log.Panicf(format, args...) }
func (exampleT) Fatalf(format string, args ...any) { log.Panicf(format, args...) }
func (exampleT) Fatal(args ...any)                 { log.Panic(args...) }
