package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/processors/searchindex"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// capturedOrders is the example's tables (orders, customers, order_items)
// in a fresh schema, captured to Kafka by a running capture.
type capturedOrders struct {
	stem    string // schema, topic prefix, slot and publication name
	table   string // <stem>.orders
	topic   string
	brokers []string
	reg     *sr.Client
	db      *pgx.Conn
	done    chan error // capture's Run result
}

func startCapturedOrders(ctx context.Context, t *testing.T) *capturedOrders {
	t.Helper()
	return startCapturedOrdersNamed(ctx, t, "search", 0)
}

// startCapturedOrdersNamed is startCapturedOrders with a stem starting with
// name and, when partitions is not 0, a change topic of that many partitions
// (the broker's default otherwise).
func startCapturedOrdersNamed(ctx context.Context, t *testing.T, name string, partitions int32) *capturedOrders {
	t.Helper()
	dsn, brokers := testenv.PGDSN(t), testenv.KafkaBrokers(t)
	reg, err := sr.NewClient(sr.URLs(testenv.RegistryURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	stem := fmt.Sprintf("%s_%d_%d", name, time.Now().Unix(), rand.IntN(1_000_000))
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	c := &capturedOrders{stem: stem, table: stem + ".orders", topic: serde.Topic(stem, stem, "orders"),
		brokers: brokers, reg: reg, db: db, done: make(chan error, 1)}
	c.exec(ctx, t, "CREATE SCHEMA "+stem)
	for _, create := range []string{orders.CreateTable(stem), orders.CreateCustomersTable(stem), orders.CreateOrderItemsTable(stem)} {
		c.exec(ctx, t, create)
	}
	t.Cleanup(func() {
		bg := context.Background()
		testenv.DropSlot(bg, db, stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
		db.Exec(bg, "DROP SCHEMA "+stem+" CASCADE")
		db.Close(bg)
	})
	if partitions != 0 {
		createTopic(ctx, t, brokers, c.topic, partitions)
	}
	cp, err := capture.New(capture.Config{DSN: dsn, Tables: []string{c.table, stem + ".customers", stem + ".order_items"}, Brokers: brokers, TopicPrefix: stem,
		Slot: stem, Publication: stem, StatusInterval: 200 * time.Millisecond}, serde.NewEncoder(reg, stem))
	if err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cp.Run(ctx) }()
	select {
	case <-cp.Streaming():
	case err := <-c.done:
		t.Fatalf("capture: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("capture did not stream within 60s")
	}
	return c
}

// waitUntil polls cond until it holds, failing the test after timeout, or as
// soon as one of the running parts stops (running maps a part's name to its
// Run result).
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, running map[string]<-chan error) {
	t.Helper()
	waitUntilDescribed(t, what, timeout, cond, running, nil)
}

// waitUntilDescribed is waitUntil, saying what describe returns when it
// times out.
func waitUntilDescribed(t *testing.T, what string, timeout time.Duration, cond func() bool, running map[string]<-chan error, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		for name, done := range running {
			select {
			case err := <-done:
				t.Fatalf("%s stopped: %v", name, err)
			default:
			}
		}
		if time.Now().After(deadline) {
			if describe != nil {
				t.Fatalf("timed out waiting for %s: %s", what, describe())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *capturedOrders) exec(ctx context.Context, t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := c.db.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// records reads the topic's committed records, up to its current end.
func (c *capturedOrders) records(ctx context.Context, t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	return committedRecords(ctx, t, c.brokers, topic)
}

// searchHit is a document as the test reads it back, with its version.
type searchHit struct {
	Doc     orders.OrderDocument
	Version int64
}

func readIndex(ctx context.Context, t *testing.T, es *elasticsearch.Client, index string) map[string]searchHit {
	t.Helper()
	out := map[string]searchHit{}
	for _, h := range searchAll(ctx, t, es, index) {
		var doc orders.OrderDocument
		if err := json.Unmarshal(h.Source, &doc); err != nil {
			t.Fatalf("document %s: %v", h.ID, err)
		}
		out[h.ID] = searchHit{Doc: doc, Version: h.Version}
	}
	return out
}

// sqlDocuments is what the index must hold: every row of the table as a
// document, read with SQL.
func sqlDocuments(ctx context.Context, t *testing.T, db *pgx.Conn, table string) map[string]orders.OrderDocument {
	t.Helper()
	rows, err := db.Query(ctx, "SELECT id, customer_id, status, amount::text, created_at FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]orders.OrderDocument{}
	for rows.Next() {
		var d orders.OrderDocument
		if err := rows.Scan(&d.ID, &d.CustomerID, &d.Status, &d.Amount, &d.CreatedAt); err != nil {
			t.Fatal(err)
		}
		d.CreatedAt = d.CreatedAt.UTC()
		out[strconv.FormatInt(d.ID, 10)] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func docsOf(hits map[string]searchHit) map[string]orders.OrderDocument {
	out := map[string]orders.OrderDocument{}
	for id, h := range hits {
		h.Doc.CreatedAt = h.Doc.CreatedAt.UTC()
		out[id] = h.Doc
	}
	return out
}

// TestOrderSearchEndToEnd commits orders to PostgreSQL and checks that the
// Elasticsearch index holds exactly the table's rows as documents, through
// real capture, Kafka, schema registry and the goka processor; then delivers
// every change a second time and checks that no document, not even its
// version, changes.
func TestOrderSearchEndToEnd(t *testing.T) {
	esURL := testenv.ESURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrders(ctx, t)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{esURL}})
	if err != nil {
		t.Fatal(err)
	}
	index := c.stem
	t.Cleanup(func() {
		if res, err := (esapi.IndicesDeleteRequest{Index: []string{index}}).Do(context.Background(), es); err == nil {
			res.Body.Close()
		}
	})
	proc, err := processors.NewProcessor(orders.Search(c.stem, c.stem, index), processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Elasticsearch: es, Group: c.stem + "-search",
		DeadLetterTopic: c.stem + ".search.dlq",
	})
	if err != nil {
		t.Fatal(err)
	}
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, 90*time.Second, cond, map[string]<-chan error{"processor": procDone, "capture": c.done})
	}

	// The index and its mapping are there before any change is.
	waitFor("the index to be created", func() bool {
		res, err := esapi.IndicesGetMappingRequest{Index: []string{index}}.Do(ctx, es)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode == 200 && strings.Contains(string(body), `"status":{"type":"keyword"}`)
	})

	// The workload: inserts, an update of two columns, an update of the
	// creation time, a delete, another insert.
	day1 := time.Date(2026, 11, 20, 10, 0, 0, 123456000, time.UTC)
	day2 := time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC)
	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount, created_at) VALUES (1, 1, 10.00, $1), (2, 2, 20.50, $1), (3, 1, 5.25, $2)", day1, day2)
	c.exec(ctx, t, "UPDATE "+c.table+" SET amount = 15.00, status = 'paid' WHERE id = 1")
	c.exec(ctx, t, "UPDATE "+c.table+" SET created_at = $1 WHERE id = 3", day1)
	c.exec(ctx, t, "DELETE FROM "+c.table+" WHERE id = 2")
	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount, created_at) VALUES (4, 3, 0.99, $1)", day2)

	want := sqlDocuments(ctx, t, c.db, c.table)
	if len(want) != 3 || want["1"].Status != "paid" || want["1"].Amount != "15.00" {
		t.Fatalf("the workload left unexpected rows: %+v", want)
	}
	var hits map[string]searchHit
	waitFor("the index to equal SQL", func() bool {
		hits = readIndex(ctx, t, es, index)
		return reflect.DeepEqual(docsOf(hits), want)
	})
	const events = 7 // 3 inserts, 2 updates, 1 delete, 1 insert
	waitFor("the processor to count every change", func() bool { return proc.Stats().Changes == events })
	if st := proc.Stats(); st.Duplicates != 0 || st.DeadLetters != 0 {
		t.Fatalf("stats %+v: duplicates or dead letters before any redelivery", st)
	}
	// The versions are the positions of the last change of each row.
	for id, h := range hits {
		if h.Version <= 1 {
			t.Fatalf("document %s has version %d, not a position", id, h.Version)
		}
	}

	// The processor created the index with the example's mapping and a
	// delete retention that outlives Elasticsearch's 60s default.
	res, err := esapi.IndicesGetRequest{Index: []string{index}}.Do(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]struct {
		Mappings struct {
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
		} `json:"mappings"`
		Settings struct {
			Index struct {
				GCDeletes string `json:"gc_deletes"`
			} `json:"index"`
		} `json:"settings"`
	}
	err = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := created[index]; got.Mappings.Properties["status"].Type != "keyword" || got.Settings.Index.GCDeletes != searchindex.DeleteRetention {
		t.Fatalf("index %s created with %+v", index, got)
	}

	// Deliver every change again: copy the topic's records onto its end.
	originals := c.records(ctx, t, c.topic)
	kafka, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	var n int64
	for _, r := range originals {
		if err := kafka.ProduceSync(ctx, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if r.Value != nil {
			n++
		}
	}
	if n != events {
		t.Fatalf("the topic holds %d change events, want exactly %d", n, events)
	}
	waitFor("the processor to handle the redelivered changes", func() bool { return proc.Stats().Changes == 2*events })
	if st := proc.Stats(); st.Duplicates != events || st.DeadLetters != 0 {
		t.Fatalf("stats %+v: want %d duplicates and no dead letters", st, events)
	}
	if after := readIndex(ctx, t, es, index); !reflect.DeepEqual(after, hits) {
		t.Fatalf("redelivery changed the index:\nbefore %+v\nafter  %+v", hits, after)
	}
	cancel()
	if err := <-procDone; err != nil {
		t.Errorf("processor: %v", err)
	}
	if err := <-c.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// TestOrderSearchElasticsearchDown: with nothing listening where
// Elasticsearch should be, a change is retried for RetryTimeout, then lands
// in the dead-letter topic, as it was, with headers that say why and where it
// came from; the processor goes on.
func TestOrderSearchElasticsearchDown(t *testing.T) {
	testenv.Integration(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrders(ctx, t)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	dlq := c.stem + ".search.dlq"
	proc, err := processors.NewProcessor(orders.Search(c.stem, c.stem, c.stem), processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Elasticsearch: es, Group: c.stem + "-search",
		DeadLetterTopic: dlq, RetryTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(ctx) }()

	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount) VALUES (1, 1, 10.00), (2, 2, 3.50)")
	deadline := time.Now().Add(90 * time.Second)
	for proc.Stats().DeadLetters < 2 {
		select {
		case err := <-procDone:
			t.Fatalf("processor stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: timed out waiting for two dead letters", proc.Stats())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := proc.Stats(); st.Changes != 2 || st.Duplicates != 0 {
		t.Fatalf("stats %+v", st)
	}

	originals := c.records(ctx, t, c.topic)
	// Stats counts a dead letter when it is emitted; goka produces it
	// asynchronously, so wait for Kafka to hold both.
	letters := c.records(ctx, t, dlq)
	for wait := time.Now().Add(30 * time.Second); len(letters) < 2 && time.Now().Before(wait); letters = c.records(ctx, t, dlq) {
		time.Sleep(200 * time.Millisecond)
	}
	if len(originals) != 2 || len(letters) != 2 {
		t.Fatalf("%d change records, %d dead letters; want 2 and 2", len(originals), len(letters))
	}
	dec := serde.NewDecoder(c.reg)
	for i, l := range letters {
		o := originals[i]
		h := map[string]string{}
		for _, x := range l.Headers {
			h[x.Key] = string(x.Value)
		}
		ev, err := dec.DecodeEvent(ctx, o.Value)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			processors.HeaderTopic:     c.topic,
			processors.HeaderPartition: strconv.Itoa(int(o.Partition)),
			processors.HeaderOffset:    strconv.FormatInt(o.Offset, 10),
			processors.HeaderPosition:  ev.Position.String(),
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("dead letter %d: header %s = %q, want %q", i, k, h[k], v)
			}
		}
		if e := h[processors.HeaderError]; !strings.Contains(e, "gave up after 1s") || !strings.Contains(e, "127.0.0.1:1") {
			t.Errorf("dead letter %d: header %s = %q", i, processors.HeaderError, e)
		}
		if string(l.Key) != string(o.Key) || string(l.Value) != string(o.Value) {
			t.Errorf("dead letter %d is not the original record", i)
		}
	}
	cancel()
	if err := <-procDone; err != nil {
		t.Errorf("processor: %v", err)
	}
	if err := <-c.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// TestSearchIndexRefusedAtStart: a mapping Elasticsearch refuses stops the
// processor as it starts, with an error that says what to fix, instead of
// sending every change to the dead-letter topic.
func TestSearchIndexRefusedAtStart(t *testing.T) {
	esURL := testenv.ESURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "badmap", 0)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{esURL}})
	if err != nil {
		t.Fatal(err)
	}
	topo := topologies.New("bad-mapping", topologies.Index(topologies.TableOf[orders.Order](c.stem, c.stem, "orders"), c.stem, orders.Document,
		topologies.WithMapping(`{"properties": {"status": {"type": "no_such_type"}}}`)))
	proc, err := processors.NewProcessor(topo, processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Elasticsearch: es, Group: c.stem, DeadLetterTopic: c.stem + ".dlq",
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	err = proc.Run(rctx)
	if err == nil || !strings.Contains(err.Error(), "no_such_type") || !strings.Contains(err.Error(), "fix the index's name or mapping") {
		t.Fatalf("Run = %v, want the refused mapping and the fix", err)
	}
	t.Logf("Run: %v", err)
}
