package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
)

// TestConsistentReadModelNeverShowsHalfATransaction runs the order summary
// read model transaction-consistent against the real PostgreSQL, capture and
// Kafka, under a workload of multi-table transactions: each creates an
// order together with its line items, or changes, adds or removes line items
// together with the order's amount, or deletes an order with its items, so
// that after every transaction each order's amount is the total of its
// items. Readers poll the consistent view all along: no summary they see
// ever has an amount other than its items' total, and the view ends equal
// to SQL's summaries. The plain read model of the same changes (its own
// table, written change by change) is polled alongside, and how often it
// shows half a transaction is logged.
func TestConsistentReadModelNeverShowsHalfATransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "consistent", 0)
	s := c.stem
	c.exec(ctx, t, "INSERT INTO "+s+".customers (id, name, segment) VALUES (1, 'Ada', 'retail'), (2, 'Grace', 'b2b')")

	group := s + "-consistent"
	node := orders.ConsistentSummaryNode(s, s)
	proc, err := processors.NewProcessor(topologies.New("consistent-summaries", node), processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Group: group, DeadLetterTopic: s + ".consistent.dlq"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(pctx) }()
	defer func() {
		stop()
		if err := <-procDone; err != nil {
			t.Errorf("processor: %v", err)
		}
	}()
	running := map[string]<-chan error{"capture": c.done, "processor": procDone}
	waitUntil(t, "the processor", 2*time.Minute, proc.Ready, running)

	consistent, err := views.ConsistentReadModel(c.brokers, group, node)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := views.ReadModel(c.brokers, group, node)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopViews := context.WithCancel(ctx)
	var vg sync.WaitGroup
	for _, v := range []views.View{consistent, plain} {
		vg.Add(1)
		go func() {
			defer vg.Done()
			if err := v.Run(vctx); err != nil {
				t.Errorf("view %s: %v", v.Topic(), err)
			}
		}()
	}
	defer func() { stopViews(); vg.Wait() }()
	waitUntil(t, "the views", time.Minute, func() bool { return consistent.Recovered() && plain.Recovered() }, running)

	// Readers: each pass reads every summary; a summary whose amount is not
	// its items' total shows half a transaction.
	var passes, seen, broken, plainSeen, plainBroken atomic.Int64
	var firstBroken atomic.Value
	readers, stopReaders := sync.WaitGroup{}, make(chan struct{})
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stopReaders:
				return
			default:
			}
			consistent.Each(func(key string, o orders.OrderSummary) bool {
				seen.Add(1)
				if o.Amount != o.ItemsTotal {
					broken.Add(1)
					firstBroken.CompareAndSwap(nil, fmt.Sprintf("%s: %+v", key, o))
				}
				return true
			})
			plain.Each(func(_ string, o orders.OrderSummary) bool {
				plainSeen.Add(1)
				if o.Amount != o.ItemsTotal {
					plainBroken.Add(1)
				}
				return true
			})
			passes.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	w := &itemWorkload{c: c, rng: rand.New(rand.NewPCG(11, 12))}
	const transactions = 300
	for range transactions {
		w.step(ctx, t)
	}
	want, err := orders.SummariesFromSQL(ctx, c.db, s)
	if err != nil {
		t.Fatal(err)
	}
	got := func() map[string]orders.OrderSummary {
		m := map[string]orders.OrderSummary{}
		consistent.Each(func(k string, o orders.OrderSummary) bool { m[k] = o; return true })
		return m
	}
	waitUntilDescribed(t, "the consistent view to equal SQL's summaries", 2*time.Minute, func() bool {
		return reflect.DeepEqual(got(), want)
	}, running, func() string { return fmt.Sprintf("view has %d summaries, SQL %d", len(got()), len(want)) })
	close(stopReaders)
	readers.Wait()

	// Served over HTTP as any table is.
	mux := http.NewServeMux()
	mux.Handle("GET /order-summaries/{id}", views.Lookup(consistent, views.PathInt("id")))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for id, o := range want {
		res, err := http.Get(srv.URL + "/order-summaries/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var served orders.OrderSummary
		err = json.NewDecoder(res.Body).Decode(&served)
		res.Body.Close()
		if served.CreatedAt = served.CreatedAt.UTC(); err != nil || res.StatusCode != http.StatusOK || !reflect.DeepEqual(served, o) {
			t.Fatalf("GET /order-summaries/%s: %d %+v (%v), want %+v", id, res.StatusCode, served, err, o)
		}
		break
	}
	res, err := http.Get(srv.URL + "/order-summaries/999999")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET a missing summary: %s, want 404", res.Status)
	}
	_, txs := consistent.Version()
	t.Logf("%d transactions (%d orders at the end); consistent view: %d transactions taken in, %d reader passes saw %d summaries, %d of them half a transaction; plain read model: %d summaries seen, %d half a transaction",
		transactions, len(want), txs, passes.Load(), seen.Load(), broken.Load(), plainSeen.Load(), plainBroken.Load())
	if broken.Load() != 0 {
		t.Fatalf("the consistent view showed half a transaction %d times, first %v", broken.Load(), firstBroken.Load())
	}
	if seen.Load() == 0 || passes.Load() < 10 {
		t.Fatalf("the readers saw %d summaries in %d passes: the test checked nothing", seen.Load(), passes.Load())
	}
}

// itemWorkload runs transactions that keep each order's amount equal to the
// total of its line items.
type itemWorkload struct {
	c      *capturedOrders
	rng    *rand.Rand
	orders []int64
}

func (w *itemWorkload) step(ctx context.Context, t *testing.T) {
	t.Helper()
	s := w.c.stem
	tx, err := w.c.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	addItem := func(order int64) {
		exec("INSERT INTO "+s+".order_items (order_id, product, quantity, unit_price) VALUES ($1, $2, $3, $4)",
			order, fmt.Sprintf("p%d", w.rng.IntN(50)), 1+w.rng.IntN(5), fmt.Sprintf("%d.%02d", 1+w.rng.IntN(40), w.rng.IntN(100)))
	}
	setAmount := func(order int64) {
		exec("UPDATE "+s+".orders SET amount = (SELECT coalesce(sum(quantity * unit_price), 0) FROM "+s+".order_items WHERE order_id = $1) WHERE id = $1", order)
	}
	var order int64
	if len(w.orders) > 0 {
		order = w.orders[w.rng.IntN(len(w.orders))]
	}
	switch r := w.rng.IntN(100); {
	case order == 0 || r < 40: // a new order with its items
		if err := tx.QueryRow(ctx, "INSERT INTO "+s+".orders (customer_id, amount) VALUES ($1, 0) RETURNING id", 1+w.rng.IntN(2)).Scan(&order); err != nil {
			t.Fatal(err)
		}
		for range 1 + w.rng.IntN(4) {
			addItem(order)
		}
		setAmount(order)
		w.orders = append(w.orders, order)
	case r < 65: // more of an item, the amount first
		exec("UPDATE "+s+".orders SET amount = amount + (SELECT unit_price FROM "+s+".order_items WHERE order_id = $1 ORDER BY id LIMIT 1) WHERE id = $1", order)
		exec("UPDATE "+s+".order_items SET quantity = quantity + 1 WHERE id = (SELECT min(id) FROM "+s+".order_items WHERE order_id = $1)", order)
	case r < 80: // another item
		addItem(order)
		setAmount(order)
	case r < 90: // one item fewer, if it keeps one
		exec("DELETE FROM "+s+".order_items WHERE id = (SELECT max(id) FROM "+s+".order_items WHERE order_id = $1) AND (SELECT count(*) FROM "+s+".order_items WHERE order_id = $1) > 1", order)
		setAmount(order)
	default: // the order goes, with its items
		exec("DELETE FROM "+s+".order_items WHERE order_id = $1", order)
		exec("DELETE FROM "+s+".orders WHERE id = $1", order)
		for i, o := range w.orders {
			if o == order {
				w.orders = append(w.orders[:i], w.orders[i+1:]...)
				break
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
