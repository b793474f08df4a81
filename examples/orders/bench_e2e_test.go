package orders_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/bench"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// benchChangesVar sets how many changes BenchmarkOrdersProcessing puts on
// its topic (default 20000, about a minute for the three runs).
const benchChangesVar = "CDCFLOW_BENCH_CHANGES"

// benchPartitions is the partition count of the benchmark's change topic.
const benchPartitions = 4

// BenchmarkOrdersProcessing measures the throughput of the orders
// topologies on a pre-filled change topic, each next to a bare franz-go
// consume-and-decode loop over the same topic:
//
//	bare:    kgo consumer (read_committed) + serde decode of key and value
//	metrics: orders.Metrics (Redis series and windows)
//	search:  orders.Search (Elasticsearch index)
//	summaries: orders.Summaries (the order summaries read model)
//	summaries-consistent: the same read model, transaction-consistent
//	  (orders.ConsistentSummaryNode), until its gate published every change
//
// The topic holds N Debezium-Avro order changes (inserts, then an update
// of each order's status and amount, then deletes of a tenth of them),
// encoded with serde as capture encodes them. Each iteration of a topology
// runs a new consumer group into new Redis keys or a new index, and counts
// from its first change handled to its last, so that the group's join is
// not counted; start_s is how long that took. records/s is the topology's rate; x_bare its ratio to the
// bare loop's. N is CDCFLOW_BENCH_CHANGES (default 20000):
//
//	CDCFLOW_BENCH_CHANGES=200000 go test ./examples/orders -run '^$' -bench OrdersProcessing -benchtime 1x
func BenchmarkOrdersProcessing(b *testing.B) {
	testenv.Integration(b)
	n := 20000
	if v := os.Getenv(benchChangesVar); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("%s=%q: set it to a number of changes, 10 or more", benchChangesVar, v)
		}
	}
	ctx := context.Background()
	brokers := testenv.KafkaBrokers(b)
	reg, err := sr.NewClient(sr.URLs(testenv.RegistryURL(b)))
	if err != nil {
		b.Fatal(err)
	}
	stem := fmt.Sprintf("bench_%d_%d", time.Now().Unix(), rand.IntN(1_000_000))
	topic := fillOrderChanges(ctx, b, brokers, reg, stem, n)
	// The read models' line items and customers topics are there, empty.
	others := []string{serde.Topic(stem, stem, "order_items"), serde.Topic(stem, stem, "customers")}
	for _, t := range others {
		createTopic(ctx, b, brokers, t, benchPartitions)
	}
	b.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		topics := append(others, topic, serde.TransactionTopic(stem))
		if listed, err := adm.ListTopics(context.Background()); err == nil {
			for _, t := range listed.Names() {
				if strings.HasPrefix(t, stem+"-") || strings.HasPrefix(t, stem+".") && strings.HasSuffix(t, ".dlq") {
					topics = append(topics, t) // the runs' tables, updates and gate topics; dead letters
				}
			}
		}
		adm.DeleteTopics(context.Background(), topics...)
	})
	changes := n // every record is a change; tombstones come on top
	bare := bareConsume(ctx, b, brokers, reg, topic, changes)
	b.Logf("%d changes on %s (%d partitions); bare franz-go consume+decode: %.0f records/s", changes, topic, benchPartitions, bare)

	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(b)})
	b.Cleanup(func() { rdb.Close() })
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.ESURL(b)}})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, name string, nodes int, topo func(run string) *topologies.Topology, cfg processors.Config) {
		for i := range b.N {
			run := fmt.Sprintf("%s-%s-%d", stem, name, i)
			cfg := cfg
			cfg.Brokers, cfg.Decoder, cfg.Group, cfg.KeyPrefix = brokers, serde.NewDecoder(reg), run, run
			cfg.DeadLetterTopic = stem + "." + name + ".dlq"
			rate, start := runTopology(ctx, b, topo(run), cfg, nodes, changes)
			dropRun(ctx, b, rdb, es, run)
			b.ReportMetric(rate, "records/s")
			b.ReportMetric(start.Seconds(), "start_s")
			b.ReportMetric(rate/bare, "x_bare")
			b.ReportMetric(bare, "bare_records/s")
		}
	}
	b.Run("bare", func(b *testing.B) {
		for range b.N {
			rate := bareConsume(ctx, b, brokers, reg, topic, changes)
			b.ReportMetric(rate, "records/s")
		}
	})
	b.Run("metrics", func(b *testing.B) {
		// Metrics and two Windowed nodes: each handles every change.
		run(b, "metrics", 3, func(string) *topologies.Topology { return orders.Metrics(stem, stem) }, processors.Config{Redis: rdb})
	})
	b.Run("search", func(b *testing.B) {
		run(b, "search", 1, func(run string) *topologies.Topology { return orders.Search(stem, stem, run) }, processors.Config{Elasticsearch: es})
	})
	b.Run("summaries", func(b *testing.B) {
		// The read model of order summaries (its join and model stages,
		// goka tables): each order change makes one model update.
		run(b, "summaries", 1, func(string) *topologies.Topology { return orders.Summaries(stem, stem, "") }, processors.Config{})
	})
	b.Run("summaries-consistent", func(b *testing.B) {
		// The same read model, transaction-consistent: each change is a
		// transaction of its own, published by the gate as a document and a
		// commit marker. The rate counts from the first change the read
		// model handled to the last change the gate published.
		for i := range b.N {
			run := fmt.Sprintf("%s-consistent-%d", stem, i)
			cfg := processors.Config{Brokers: brokers, Decoder: serde.NewDecoder(reg), Group: run, DeadLetterTopic: stem + ".consistent.dlq"}
			node := orders.ConsistentSummaryNode(stem, stem)
			rate, start := runConsistent(ctx, b, topologies.New("consistent", node), cfg, engine.ConsistentTopic(run, node.Name()), changes)
			b.ReportMetric(rate, "records/s")
			b.ReportMetric(start.Seconds(), "start_s")
			b.ReportMetric(rate/bare, "x_bare")
		}
	})
}

// dropRun deletes what a run of a topology wrote: the Redis keys under
// the key prefix run and the index run.
func dropRun(ctx context.Context, b *testing.B, rdb *redis.Client, es *elasticsearch.Client, run string) {
	b.Helper()
	iter := rdb.Scan(ctx, 0, run+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		if err := rdb.Del(ctx, batch...).Err(); err != nil {
			b.Fatal(err)
		}
		keys = keys[len(batch):]
	}
	res, err := esapi.IndicesDeleteRequest{Index: []string{run}, IgnoreUnavailable: esapi.BoolPtr(true)}.Do(ctx, es)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
}

// benchOrdersTable is the orders table as capture describes it
// (orders.CreateTable).
var benchOrdersTable = &change.Table{Name: "orders", Columns: []change.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "customer_id", Type: "int4"},
	{Name: "status", Type: "text"},
	{Name: "amount", Type: "numeric", TypeMod: (12<<16 | 2) + 4},
	{Name: "created_at", Type: "timestamptz", TypeMod: -1},
}}

// fillOrderChanges creates the change topic of stem.orders (prefix and
// schema stem) and writes n changes to it, as capture would, each a
// transaction of its own: inserts of orders, an update of each, deletes
// (each followed by its tombstone) of every tenth. It returns the topic.
func fillOrderChanges(ctx context.Context, b *testing.B, brokers []string, reg *sr.Client, stem string, n int) string {
	b.Helper()
	table := *benchOrdersTable
	table.Schema = stem
	enc := serde.NewEncoder(reg, stem)
	topic := serde.Topic(stem, stem, "orders")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	createTopic(ctx, b, brokers, topic, benchPartitions)
	createTopic(ctx, b, brokers, serde.TransactionTopic(stem), 1) // each change a transaction of its own, with its END record
	orderCount := n * 10 / 21                                     // inserts + updates + a tenth deleted
	day := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	lsn := change.LSN(0x1000000)
	row := func(id int, status string, cents int64) change.Row {
		return change.Row{"id": int64(id), "customer_id": int32(id % 97), "status": status,
			"amount": big.NewRat(cents, 100), "created_at": day.Add(time.Duration(id) * time.Second)}
	}
	var records []*kgo.Record
	emit := func(i int, ev *change.Event) {
		lsn += 0x100
		ev.Source = change.Source{Version: "bench", Connector: "postgresql", Name: stem, DB: "cdcflow", Schema: stem, Table: "orders",
			Snapshot: "false", TsMs: day.Add(time.Duration(i) * time.Second).UnixMilli(), LSN: lsn, TxID: int64(1000 + i)}
		ev.Transaction = &change.Transaction{ID: fmt.Sprintf("%d:%d", 1000+i, lsn), TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: lsn}
		ev.Position = change.Position{CommitLSN: lsn, Index: 1}
		ev.TsMs = ev.Source.TsMs
		e, err := enc.Encode(ctx, &table, ev)
		if err != nil {
			b.Fatalf("encode change %d: %v", i, err)
		}
		records = append(records, &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value})
		end, err := enc.EncodeTransaction(ctx, serde.TransactionRecord{Status: serde.TransactionEnd, ID: ev.Transaction.ID,
			TsMs: ev.TsMs, EventCount: 1, DataCollections: []serde.DataCollectionCount{{DataCollection: stem + ".orders", EventCount: 1}}})
		if err != nil {
			b.Fatalf("encode END record %d: %v", i, err)
		}
		records = append(records, &kgo.Record{Topic: end.Topic, Key: end.Key, Value: end.Value})
		if ev.Op == change.OpDelete {
			t, err := enc.Tombstone(ctx, &table, ev)
			if err != nil {
				b.Fatal(err)
			}
			records = append(records, &kgo.Record{Topic: topic, Key: t.Key})
		}
	}
	for i := 0; i < n; i++ {
		switch id := i % orderCount; {
		case i < orderCount:
			emit(i, &change.Event{Op: change.OpCreate, After: row(id, "new", int64(1000+id))})
		case i < 2*orderCount:
			emit(i, &change.Event{Op: change.OpUpdate, After: row(id, "paid", int64(1500+id))})
		default:
			id := (i - 2*orderCount) * 10 % orderCount
			emit(i, &change.Event{Op: change.OpDelete, Before: change.Row{"id": int64(id)}})
		}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		b.Fatalf("produce %d records to %s: %v", len(records), topic, err)
	}
	return topic
}

// bareConsume is bench.BareConsume, failing b on an error.
func bareConsume(ctx context.Context, b *testing.B, brokers []string, reg *sr.Client, topic string, changes int) float64 {
	b.Helper()
	rate, err := bench.BareConsume(ctx, brokers, reg, topic, changes)
	if err != nil {
		b.Fatal(err)
	}
	return rate
}

// runTopology runs topo until each of its nodes (all reading the one
// topic) has handled the topic's changes, and returns the changes per
// second through the topology, from the first change handled to the last,
// and how long the processor took from Run to its first change.
func runTopology(ctx context.Context, b *testing.B, topo *topologies.Topology, cfg processors.Config, nodes, changes int) (float64, time.Duration) {
	want := int64(nodes * changes)
	var first, last int64
	elapsed, start := runProcessor(ctx, b, topo, cfg, func(st processors.Stats) (bool, string) {
		if first == 0 {
			first = st.Changes
		}
		last = st.Changes
		if st.DeadLetters > 0 || st.Duplicates > 0 {
			b.Fatalf("%s: %+v: the benchmark's changes apply once each", topo.Name, st)
		}
		return st.Changes >= want, fmt.Sprintf("handled %d of %d changes", st.Changes, want)
	})
	return float64(last-first) / float64(nodes) / elapsed.Seconds(), start
}

// runConsistent runs topo, whose one read model is transaction-consistent
// and publishes to the consistent topic out, until the gate published every
// change (a document and a commit marker each), and returns the rate from
// the first change handled to the last published, and how long the
// processor took to handle the first.
func runConsistent(ctx context.Context, b *testing.B, topo *topologies.Topology, cfg processors.Config, out string, changes int) (float64, time.Duration) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	want, published, asked := int64(2*changes), int64(0), time.Time{}
	elapsed, start := runProcessor(ctx, b, topo, cfg, func(st processors.Stats) (bool, string) {
		if st.DeadLetters > 0 {
			b.Fatalf("%s: %+v: the benchmark's changes apply once each", topo.Name, st)
		}
		if time.Since(asked) > 20*time.Millisecond {
			asked = time.Now()
			if ends, err := adm.ListEndOffsets(ctx, out); err == nil {
				published = 0
				ends.Each(func(o kadm.ListedOffset) { published += o.Offset })
			}
		}
		return published >= want, fmt.Sprintf("published %d of %d records", published, want)
	})
	return float64(changes) / elapsed.Seconds(), start
}

// runProcessor runs topo until finished, asked every 5ms once the
// processor handled a change, says it is (or it says why not, for a
// timeout after 15 minutes), and returns how long that took from the first
// change handled, and how long the processor took from Run to that change.
func runProcessor(ctx context.Context, b *testing.B, topo *topologies.Topology, cfg processors.Config, finished func(processors.Stats) (bool, string)) (time.Duration, time.Duration) {
	b.Helper()
	proc, err := processors.NewProcessor(topo, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- proc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("%s: %v", topo.Name, err)
		}
	}()
	var start time.Time
	progress := "handled no change"
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if st := proc.Stats(); st.Changes > 0 {
			if start.IsZero() {
				start = time.Now()
			}
			var ok bool
			if ok, progress = finished(st); ok {
				return time.Since(start), start.Sub(began)
			}
		}
		select {
		case err := <-done:
			done <- nil // for the deferred wait
			b.Fatalf("%s stopped: %v", topo.Name, err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %s in 15 minutes", topo.Name, progress)
		}
	}
}
