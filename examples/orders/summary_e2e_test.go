package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
	out, err := orders.SummariesFromSQL(ctx, c.db, c.stem)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// summariesOf decodes the documents of a read model table (its values, as
// the processor keeps them): the summaries of the orders that are there.
func summariesOf(t *testing.T, node *topologies.ReadModelNode[orders.OrderSummary], table map[string][]byte) map[string]orders.OrderSummary {
	t.Helper()
	out := map[string]orders.OrderSummary{}
	for k, v := range table {
		var st engine.ModelState
		if err := json.Unmarshal(v, &st); err != nil {
			t.Fatalf("read model state %s: %v", k, err)
		}
		if st.Document == nil {
			continue // the order is not there (yet, or any more)
		}
		doc, err := node.Document(st.Document)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = doc
	}
	return out
}

// readTable reads a goka table's current content through a view: key → the
// value's bytes. A table whose processor has not created it yet (its Run
// does) is empty.
func readTable(ctx context.Context, t *testing.T, brokers []string, table goka.Table) map[string][]byte {
	t.Helper()
	if !topicExists(ctx, t, brokers, string(table)) {
		return map[string][]byte{}
	}
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
