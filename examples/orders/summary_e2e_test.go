package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOrderSummaryEndToEnd runs the order summary read model on real capture
// output: the summaries equal the SQL join of orders, customers and line
// items after a workload of inserts, status and amount changes, a customer
// rename, an order moving to another customer, line items moving, rows
// arriving before the rows they point at, and deletes. Then every consumer
// group of the read model is reset to the beginning and run again: the
// tables stay byte-for-byte the same.
func TestOrderSummaryEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrders(ctx, t)
	group := c.stem + "-summaries"
	node := orders.SummaryNode(c.stem, c.stem)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.ESURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	run := func() (*processors.Processor, context.CancelFunc, chan error) {
		proc, err := processors.NewProcessor(orders.Summaries(c.stem, c.stem, c.stem+"-summaries"), processors.Config{
			Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Group: group, Elasticsearch: es,
		})
		if err != nil {
			t.Fatal(err)
		}
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- proc.Run(pctx) }()
		return proc, stop, done
	}
	proc, stop, done := run()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, 120*time.Second, cond, map[string]<-chan error{"processor": done, "capture": c.done})
	}

	// The workload. Line item 10 and customer 3 arrive before the rows that
	// point at them or that they point at.
	s := c.stem
	day := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	c.exec(ctx, t, "INSERT INTO "+s+".order_items VALUES (10, 3, 'early widget', 2, 1.25)")
	c.exec(ctx, t, "INSERT INTO "+s+".customers VALUES (1, 'Ada', 'retail'), (2, 'Grace', 'b2b')")
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount, created_at) VALUES (1, 1, 10.00, $1), (2, 2, 20.50, $1), (3, 3, 7.00, $1), (4, 1, 1.00, $1)", day)
	c.exec(ctx, t, "INSERT INTO "+s+".order_items VALUES (1, 1, 'pen', 3, 1.50), (2, 1, 'ink', 1, 4.99), (3, 2, 'desk', 1, 199.00), (4, 4, 'clip', 10, 0.05)")
	c.exec(ctx, t, "INSERT INTO "+s+".customers VALUES (3, 'Linus', 'retail')")
	c.exec(ctx, t, "UPDATE "+s+".orders SET status = 'paid' WHERE id IN (1, 2)")
	c.exec(ctx, t, "UPDATE "+s+".orders SET status = 'shipped' WHERE id = 1")
	c.exec(ctx, t, "UPDATE "+s+".orders SET amount = 12.25 WHERE id = 3")
	c.exec(ctx, t, "UPDATE "+s+".customers SET name = 'Ada Lovelace', segment = 'vip' WHERE id = 1") // reaches orders 1 and 4
	c.exec(ctx, t, "UPDATE "+s+".orders SET customer_id = 2 WHERE id = 4")                           // moves to Grace
	c.exec(ctx, t, "UPDATE "+s+".order_items SET order_id = 2, quantity = 2 WHERE id = 2")           // moves to order 2
	c.exec(ctx, t, "DELETE FROM "+s+".order_items WHERE id = 4")
	c.exec(ctx, t, "UPDATE "+s+".orders SET status = 'cancelled' WHERE id = 2")
	c.exec(ctx, t, "DELETE FROM "+s+".orders WHERE id = 3")                                                       // its summary goes, item 10 stays behind
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount, created_at) VALUES (5, 9, 3.00, $1)", day) // customer 9 does not exist
	c.exec(ctx, t, "UPDATE "+s+".customers SET name = 'Grace Hopper' WHERE id = 2")

	want := sqlSummaries(ctx, t, c)
	if len(want) != 4 || want["1"].CustomerName != "Ada Lovelace" || want["4"].CustomerName != "Grace Hopper" || want["2"].Items != 2 {
		t.Fatalf("the workload left unexpected rows: %+v", want)
	}
	table := goka.GroupTable(processors.ReadModelGroup(group, node))
	var got map[string][]byte
	waitFor("the summaries to equal SQL", func() bool {
		got = readTable(ctx, t, c.brokers, table)
		return reflect.DeepEqual(summariesOf(t, node, got), want)
	})
	if st := proc.Stats(); st.Duplicates != 0 {
		t.Fatalf("stats %+v: duplicates before any redelivery", st)
	}
	index := goka.GroupTable(processors.ReadModelIndexGroup(group, node))
	gotIndex := readTable(ctx, t, c.brokers, index)
	checkSummaryAPI(ctx, t, c, group, want)

	// Replay: reset both groups to the beginning and run again.
	stop()
	if err := <-done; err != nil {
		t.Fatalf("processor: %v", err)
	}
	adm := kadm.NewClient(kgoClient(t, c.brokers))
	defer adm.Close()
	groups := []string{string(processors.ReadModelGroup(group, node)), string(processors.ReadModelIndexGroup(group, node))}
	deleted, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if r, ok := deleted[g]; !ok || r.Err != nil {
			t.Fatalf("reset group %s: %+v", g, r)
		}
	}
	proc, stop, done = run()
	defer stop()
	// The replay is done once the counters stop moving for 3s.
	var last processors.Stats
	var still time.Time
	waitFor("the replay to settle", func() bool {
		st := proc.Stats()
		if st != last || st.Duplicates == 0 {
			last, still = st, time.Now()
		}
		return time.Since(still) > 3*time.Second
	})
	if again := readTable(ctx, t, c.brokers, table); !equalTables(got, again) {
		t.Fatalf("the replay changed the summaries:\nbefore %s\nafter  %s", dump(got), dump(again))
	}
	if again := readTable(ctx, t, c.brokers, index); !equalTables(gotIndex, again) {
		t.Fatalf("the replay changed the index:\nbefore %s\nafter  %s", dump(gotIndex), dump(again))
	}
	t.Logf("%d summaries equal SQL; replay: %+v, tables unchanged", len(want), proc.Stats())
}

// checkSummaryAPI serves the summaries over HTTP and checks the answers
// against want (SQL's).
func checkSummaryAPI(ctx context.Context, t *testing.T, c *capturedOrders, group string, want map[string]orders.OrderSummary) {
	t.Helper()
	srv, err := orders.SummaryAPI(c.brokers, group, c.stem, c.stem, views.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("api server: %v", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := srv.WaitReady(wctx); err != nil {
		t.Fatalf("api not ready: %v", err)
	}
	base := "http://" + ln.Addr().String()
	get := func(path string, wantCode int, into any) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != wantCode {
			t.Fatalf("GET %s: %d %s, want %d", path, res.StatusCode, body, wantCode)
		}
		if into != nil {
			if err := json.Unmarshal(body, into); err != nil {
				t.Fatalf("GET %s: %v in %s", path, err, body)
			}
		}
	}
	get("/readyz", http.StatusOK, nil)
	var one orders.OrderSummary
	get("/order-summaries/1", http.StatusOK, &one)
	if one.CreatedAt = one.CreatedAt.UTC(); !reflect.DeepEqual(one, want["1"]) {
		t.Fatalf("GET /order-summaries/1 = %+v, want %+v", one, want["1"])
	}
	get("/order-summaries/3", http.StatusNotFound, nil) // deleted
	get("/order-summaries/x", http.StatusBadRequest, nil)
	var grace []orders.OrderSummary
	get("/customers/2/orders", http.StatusOK, &grace)
	var ids []int64
	for _, s := range grace {
		ids = append(ids, s.OrderID)
		if s.CustomerName != "Grace Hopper" {
			t.Errorf("customer 2's order %d names %q", s.OrderID, s.CustomerName)
		}
	}
	if slices.Sort(ids); !reflect.DeepEqual(ids, []int64{2, 4}) {
		t.Fatalf("GET /customers/2/orders: orders %v, want [2 4]", ids)
	}
	get("/customers/999/orders", http.StatusNotFound, nil)
}

// sqlSummaries is the order summary as SQL computes it over the source
// tables.
func sqlSummaries(ctx context.Context, t *testing.T, c *capturedOrders) map[string]orders.OrderSummary {
	t.Helper()
	rows, err := c.db.Query(ctx, fmt.Sprintf(`SELECT o.id, o.customer_id, coalesce(c.name, ''), coalesce(c.segment, ''), o.status,
		o.amount::text, o.created_at, count(i.id), coalesce(sum(i.quantity * i.unit_price), 0)::numeric(14, 2)::text
		FROM %[1]s.orders o LEFT JOIN %[1]s.customers c ON c.id = o.customer_id LEFT JOIN %[1]s.order_items i ON i.order_id = o.id
		GROUP BY o.id, c.name, c.segment`, c.stem))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]orders.OrderSummary{}
	for rows.Next() {
		var s orders.OrderSummary
		var items int64
		if err := rows.Scan(&s.OrderID, &s.CustomerID, &s.CustomerName, &s.CustomerSegment, &s.Status, &s.Amount, &s.CreatedAt, &items, &s.ItemsTotal); err != nil {
			t.Fatal(err)
		}
		s.Items, s.CreatedAt = int(items), s.CreatedAt.UTC()
		out[fmt.Sprint(s.OrderID)] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// summariesOf decodes the documents of a read model table.
func summariesOf(t *testing.T, node *topologies.ReadModelNode, table map[string][]byte) map[string]orders.OrderSummary {
	t.Helper()
	out := map[string]orders.OrderSummary{}
	for k, v := range table {
		st, err := processors.ReadModelCodec{}.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		doc, ok, err := node.Document(st.(*topologies.ModelState))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out[k] = *doc.(*orders.OrderSummary)
		}
	}
	return out
}

// readTable reads a goka table's current content through a view: key → the
// value's bytes.
func readTable(ctx context.Context, t *testing.T, brokers []string, table goka.Table) map[string][]byte {
	t.Helper()
	view, err := goka.NewView(brokers, table, rawBytes{},
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(processors.SaramaConfig())),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(processors.SaramaConfig(), goka.NewTopicManagerConfig())),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatalf("view of %s: %v", table, err)
	}
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- view.Run(vctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(60 * time.Second)
	for !view.Recovered() {
		if time.Now().After(deadline) {
			t.Fatalf("view of %s did not recover within 60s", table)
		}
		time.Sleep(100 * time.Millisecond)
	}
	it, err := view.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		out[it.Key()] = v.([]byte)
	}
	return out
}

type rawBytes struct{}

func (rawBytes) Encode(v any) ([]byte, error) { return v.([]byte), nil }
func (rawBytes) Decode(b []byte) (any, error) { return bytes.Clone(b), nil }

func equalTables(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func dump(table map[string][]byte) string {
	out := map[string]json.RawMessage{}
	for k, v := range table {
		out[k] = v
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func kgoClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
