package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/lovoo/goka"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplayEverySink runs every processor kind of the example on one
// workload of real capture output: the order metrics and windowed order
// metrics (Redis), the order events (Kafka), the order summary read model
// with its search index (goka tables, Elasticsearch) and the customer-ltv
// projection of the events. The workload has inserts, status transitions, amount changes,
// customer renames, an order moving to another customer, line items moving,
// rows arriving before the rows they point at, and deletes.
//
// Source agreement: the metrics, the summaries and the search documents
// equal what SQL says over the source tables, the windowed metrics what
// the captured inserts' commit times and SQL say. Replay: every consumer group
// is then reset to the beginning and run again, and the goka tables, the
// Redis keys, the Elasticsearch documents (with their versions and sequence
// numbers: nothing was written) and the event topic are byte-for-byte what
// they were.
func TestReplayEverySink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "replay", 0)
	s := c.stem
	p := newPipeline(t, c, c.reg)
	rdb, es, eventTopic, index := p.rdb, p.es, p.eventTopic, p.index
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		p.waitFor(t, what, cond)
	}
	p.startAll(ctx, t)

	// The workload. Line item 10 and customer 3 arrive before the rows that
	// point at them or that they point at.
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
	c.exec(ctx, t, "DELETE FROM "+s+".orders WHERE id = 3")                                                                           // its summary goes, item 10 stays behind
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount, created_at) VALUES (5, 9, 3.00, $1)", day)                     // customer 9 does not exist
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount, created_at) VALUES (6, 1, 99.90, $1)", day.Add(-36*time.Hour)) // another day
	c.exec(ctx, t, "UPDATE "+s+".orders SET status = 'paid', amount = 89.90 WHERE id = 6")
	c.exec(ctx, t, "UPDATE "+s+".customers SET name = 'Grace Hopper' WHERE id = 2")

	// Source agreement.
	wantSummaries := sqlSummaries(ctx, t, c)
	if len(wantSummaries) != 5 || wantSummaries["1"].CustomerName != "Ada Lovelace" || wantSummaries["4"].CustomerName != "Grace Hopper" || wantSummaries["2"].Items != 2 {
		t.Fatalf("the workload left unexpected rows: %+v", wantSummaries)
	}
	wantMetrics := sqlMetrics(t, ctx, c.db, c.table)
	if len(wantMetrics[orders.OrdersPerDay]) != 2 || wantMetrics[orders.TopCustomers]["1"] != 1000+8990 {
		t.Fatalf("the workload left unexpected metrics: %v", wantMetrics)
	}
	modelTable := p.modelTable()
	waitFor("the summaries to equal SQL", func() bool {
		return reflect.DeepEqual(summariesOf(t, p.summary, readTable(ctx, t, c.brokers, modelTable)), wantSummaries)
	})
	waitFor("the search documents to equal SQL", func() bool {
		return reflect.DeepEqual(searchSummaries(ctx, t, es, index), wantSummaries)
	})
	waitFor("the PostgreSQL summaries to equal SQL", func() bool {
		return reflect.DeepEqual(pgSummaries(ctx, t, p), wantSummaries)
	})
	waitFor("the metrics to equal SQL", func() bool {
		return reflect.DeepEqual(redisMetrics(t, ctx, rdb, p.procs[metricsProc].proc.Metrics()), wantMetrics)
	})
	wantWindows := capturedWindows(ctx, t, c)
	if len(wantWindows[orders.RevenuePerMinuteWindow]) == 0 {
		t.Fatalf("the captured changes give the windows %v", wantWindows)
	}
	waitFor("the windowed metrics to equal the captured changes", func() bool {
		return reflect.DeepEqual(redisWindows(ctx, t, p.procs[metricsProc].proc.Metrics()), wantWindows)
	})
	orderChanges := int64(0)
	for _, r := range c.records(ctx, t, c.topic) {
		if r.Value != nil {
			orderChanges++
		}
	}
	waitFor("the events processor to handle every order change", func() bool {
		return p.procs[eventsProc].proc.Stats().Changes == orderChanges
	})
	events := int64(len(c.records(ctx, t, eventTopic)))
	waitFor("the projection to fold every event", func() bool { return p.procs[projectionsProc].proc.Stats().Changes >= events })
	checkSummaryAPI(ctx, t, c, s+"-summaries", wantSummaries)
	settle(t, waitFor, p.procs[summariesProc].proc, p.procs[projectionsProc].proc)
	// The read model's updates topic keeps what its model stage has not
	// read for Kafka's default week, not goka's hour.
	updates := engine.UpdatesTopic(s+"-"+summariesProc, p.summary.Name())
	admin := kadm.NewClient(kgoClient(t, c.brokers))
	if r := topicRetention(ctx, t, admin, updates); r != "604800000" {
		t.Errorf("updates topic %s has retention.ms=%s, want 604800000 (a week)", updates, r)
	}
	admin.Close()
	for name, r := range p.procs {
		if st := r.proc.Stats(); st.Duplicates != 0 || st.DeadLetters != 0 {
			t.Fatalf("%s: stats %+v before any replay", name, st)
		}
	}

	tables := []goka.Table{
		modelTable,
		processors.JoinTable(s+"-summaries", p.summary),
		goka.GroupTable(goka.Group(s + "-events")), // what the events processor keeps per order
		processors.ProjectionTable(s+"-projections", p.ltv),
	}
	snapshot := func() sinks {
		t.Helper()
		out := sinks{tables: map[goka.Table]map[string][]byte{}, redis: redisKeys(ctx, t, rdb, s),
			search: rawDocuments(ctx, t, es, index), events: c.records(ctx, t, eventTopic),
			pg: pgRows(ctx, t, p.pg, p.pgTable), pgDeleted: pgRows(ctx, t, p.pg, p.pgTable+"_cdc_deleted")}
		for _, tb := range tables {
			out.tables[tb] = readTable(ctx, t, c.brokers, tb)
		}
		return out
	}
	before := snapshot()
	t.Logf("before the replay: %d summaries, %d Redis keys, %d search documents, %d events from %d order changes",
		len(before.tables[modelTable]), len(before.redis), len(before.search), len(before.events), orderChanges)
	t.Logf("before the replay: %d PostgreSQL rows, %d tombstones", len(before.pg), len(before.pgDeleted))

	// Reset every consumer group to the beginning, and run again.
	var groups []string
	p.stopAll(t)
	adm := kadm.NewClient(kgoClient(t, c.brokers))
	defer adm.Close()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range listed.Groups() {
		// Not the event relay's group: its offsets on the events group's
		// table record which events were published, as capture's
		// checkpoint records which changes were; a replay keeps it.
		if strings.HasPrefix(g, s+"-") && g != s+"-events-outbox-relay" {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	want := []string{s + "-events", s + "-metrics", s + "-projections-customer-ltv", s + "-summaries", s + "-summaries-summary", s + "-summaries-summary-join"}
	if !reflect.DeepEqual(groups, want) {
		t.Fatalf("consumer groups %v, want %v", groups, want)
	}
	deleted, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if r, ok := deleted[g]; !ok || r.Err != nil {
			t.Fatalf("reset group %s: %+v", g, r)
		}
	}
	p.startAll(ctx, t)
	defer p.stopAll(t)
	for name, nodes := range map[string]int64{metricsProc: metricsNodes, eventsProc: 1} {
		waitFor(name+" to see every order change again", func() bool {
			st := p.stats(name)
			return st.Changes == nodes*orderChanges && st.Duplicates == nodes*orderChanges
		})
	}
	settle(t, waitFor, p.procs[summariesProc].proc, p.procs[projectionsProc].proc)
	after := snapshot()
	for _, tb := range tables {
		if !equalTables(before.tables[tb], after.tables[tb]) {
			t.Errorf("the replay changed table %s:\nbefore %s\nafter  %s", tb, dump(before.tables[tb]), dump(after.tables[tb]))
		}
	}
	if !maps.Equal(before.redis, after.redis) {
		t.Errorf("the replay changed Redis:\nbefore %v\nafter  %v", before.redis, after.redis)
	}
	if !maps.Equal(before.pg, after.pg) || !maps.Equal(before.pgDeleted, after.pgDeleted) {
		t.Errorf("the replay changed the PostgreSQL table:\nbefore %v %v\nafter  %v %v", before.pg, before.pgDeleted, after.pg, after.pgDeleted)
	}
	if len(before.pgDeleted) == 0 {
		t.Errorf("the PostgreSQL table keeps no tombstone of the deleted order")
	}
	if !maps.Equal(before.search, after.search) {
		t.Errorf("the replay changed the search index:\nbefore %v\nafter  %v", before.search, after.search)
	}
	if len(after.events) != len(before.events) {
		t.Errorf("the replay wrote %d events more", len(after.events)-len(before.events))
	}
	for i := range min(len(before.events), len(after.events)) {
		b, a := before.events[i], after.events[i]
		if b.Partition != a.Partition || b.Offset != a.Offset || !bytes.Equal(b.Key, a.Key) || !bytes.Equal(b.Value, a.Value) || !reflect.DeepEqual(b.Headers, a.Headers) {
			t.Errorf("event %d differs after the replay", i)
		}
	}
	for name, r := range p.procs {
		st := r.proc.Stats()
		t.Logf("replay %s: %+v", name, st)
		if st.Changes == 0 || st.Duplicates == 0 || st.DeadLetters != 0 {
			t.Errorf("%s: replay stats %+v: want changes, all of them duplicates", name, st)
		}
	}
}

// sinks is what the processors wrote: the goka tables (key → value), the
// Redis keys (key → content), the search documents (id → version, sequence
// number and source) and the event records.
type sinks struct {
	tables map[goka.Table]map[string][]byte
	redis  map[string]string
	search map[string]string
	events []*kgo.Record
	// pg and pgDeleted are the summaries' PostgreSQL table and its
	// tombstones, row by row as JSON (with cdc_version and cdc_position).
	pg, pgDeleted map[string]string
}

// settle waits until the processors have caught up with their inputs as
// they were when they started (Ready), then until their counters have not
// moved for 3s: what they consumed is processed, and what they wrote (to
// their own internal topics too) is written. Without the first wait, a
// processor still joining its group under load (counters all zero for 3s)
// would count as settled.
func settle(t *testing.T, waitFor func(string, func() bool), procs ...*processors.Processor) {
	t.Helper()
	waitFor("the processors to catch up", func() bool {
		for _, p := range procs {
			if !p.Ready() {
				return false
			}
		}
		return true
	})
	last := make([]processors.Stats, len(procs))
	still := time.Now()
	waitFor("the processors to settle", func() bool {
		for i, p := range procs {
			if st := p.Stats(); st != last[i] {
				last[i], still = st, time.Now()
			}
		}
		return time.Since(still) > 3*time.Second
	})
}

func topicExists(ctx context.Context, t *testing.T, brokers []string, topic string) bool {
	t.Helper()
	adm := kadm.NewClient(kgoClient(t, brokers))
	defer adm.Close()
	details, err := adm.ListTopics(ctx, topic)
	return err == nil && details.Has(topic) && details[topic].Err == nil
}

// redisKeys reads every key under prefix: a hash as its sorted fields and
// values, a sorted set as its members and scores in order, a string as it
// is.
func redisKeys(ctx context.Context, t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		kind, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch kind {
		case "hash":
			h, err := rdb.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, f := range slices.Sorted(maps.Keys(h)) {
				fields = append(fields, f+"="+h[f])
			}
			v = fields
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		default:
			t.Fatalf("Redis key %s is a %s; the test reads hashes, sorted sets and strings", k, kind)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = kind + " " + fmt.Sprint(v)
	}
	return out
}

// rawDocuments reads every document of index as its version, sequence
// number and source bytes.
func rawDocuments(ctx context.Context, t *testing.T, es *elasticsearch.Client, index string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, h := range searchAll(ctx, t, es, index) {
		out[h.ID] = fmt.Sprintf("v%d seq%d %s", h.Version, h.SeqNo, h.Source)
	}
	return out
}

// searchSummaries reads the order summaries of the search index.
func searchSummaries(ctx context.Context, t *testing.T, es *elasticsearch.Client, index string) map[string]orders.OrderSummary {
	t.Helper()
	out := map[string]orders.OrderSummary{}
	for _, h := range searchAll(ctx, t, es, index) {
		var s orders.OrderSummary
		if err := json.Unmarshal(h.Source, &s); err != nil {
			t.Fatalf("document %s: %v", h.ID, err)
		}
		s.CreatedAt = s.CreatedAt.UTC()
		out[h.ID] = s
	}
	return out
}

type rawHit struct {
	ID      string          `json:"_id"`
	Version int64           `json:"_version"`
	SeqNo   int64           `json:"_seq_no"`
	Source  json.RawMessage `json:"_source"`
}

// searchAll reads every document of index (none if it does not exist yet).
func searchAll(ctx context.Context, t *testing.T, es *elasticsearch.Client, index string) []rawHit {
	t.Helper()
	res, err := esapi.IndicesRefreshRequest{Index: []string{index}}.Do(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode == 404 {
		return nil
	}
	res, err = esapi.SearchRequest{Index: []string{index},
		Body: strings.NewReader(`{"size": 1000, "version": true, "seq_no_primary_term": true, "query": {"match_all": {}}}`)}.Do(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.IsError() {
		t.Fatalf("search %s: %s", index, res)
	}
	var body struct {
		Hits struct {
			Hits []rawHit `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Hits.Hits
}
