package orders_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metricsNodes is how many nodes the order-metrics topology has: each
// counts each change in the processor's Stats.
const metricsNodes = 3

// TestOrderMetricsEndToEnd commits orders to PostgreSQL and checks that the
// metrics in Redis equal what SQL says about the table, and the windowed
// metrics what the captured changes' commit times and SQL say, through real
// capture, Kafka, schema registry and the goka processor; then delivers
// every change a second time and checks that nothing moves.
func TestOrderMetricsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "e2e", 0)
	stem, brokers, reg, db, captureDone := c.stem, c.brokers, c.reg, c.db, c.done
	exec := func(sql string, args ...any) { t.Helper(); c.exec(ctx, t, sql, args...) }
	redisAddr := testenv.RedisAddr(t)

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	group := stem + "-metrics"
	proc, err := processors.NewProcessor(orders.Metrics(stem, stem), processors.Config{
		Brokers: brokers, Decoder: serde.NewDecoder(reg), Redis: rdb, KeyPrefix: stem, Group: group,
	})
	if err != nil {
		t.Fatal(err)
	}
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(ctx) }()

	// The workload: inserts over two days, an amount change, an order moved
	// to another day, a delete.
	day1 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	day2 := time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC)
	table := stem + ".orders"
	exec("INSERT INTO "+table+" (id, customer_id, amount, created_at) VALUES (1, 1, 10.00, $1), (2, 2, 20.50, $1), (3, 1, 5.25, $2)", day1, day2)
	exec("UPDATE " + table + " SET amount = 15.00, status = 'paid' WHERE id = 1")
	exec("UPDATE "+table+" SET created_at = $1 WHERE id = 3", day1)
	exec("DELETE FROM " + table + " WHERE id = 2")
	exec("INSERT INTO "+table+" (id, customer_id, amount, created_at) VALUES (4, 3, 0.99, $1)", day2)

	// What SQL says the metrics are.
	want := sqlMetrics(t, ctx, db, table)
	if !reflect.DeepEqual(want[orders.OrdersPerDay], map[string]int64{"2026-11-20": 2, "2026-11-21": 1}) ||
		!reflect.DeepEqual(want[orders.RevenuePerDay], map[string]int64{"2026-11-20": 2025, "2026-11-21": 99}) ||
		!reflect.DeepEqual(want[orders.OrdersPerStatus], map[string]int64{"new": 2, "paid": 1}) ||
		!reflect.DeepEqual(want[orders.TopCustomers], map[string]int64{"1": 2025, "3": 99}) {
		t.Fatalf("the workload left unexpected rows: %v", want)
	}

	metrics := proc.Metrics()
	read := func() map[string]map[string]int64 { return redisMetrics(t, ctx, rdb, metrics) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, 90*time.Second, cond, map[string]<-chan error{"processor": procDone, "capture": captureDone})
	}
	waitFor("metrics to equal SQL", func() bool { return reflect.DeepEqual(read(), want) })
	wantWindows := capturedWindows(ctx, t, c)
	if len(wantWindows[orders.OrdersPerHourWindow]) < 12 {
		t.Fatalf("the captured changes give the windows %v", wantWindows)
	}
	waitFor("the windowed metrics to equal the captured changes", func() bool {
		return reflect.DeepEqual(redisWindows(ctx, t, metrics), wantWindows)
	})
	t.Logf("windowed metrics: %v", wantWindows)
	for series := range want {
		if !strings.HasPrefix(series, orders.RevenuePerMinute+":") {
			continue
		}
		ttl, err := rdb.TTL(ctx, metrics.SeriesKey(orders.MetricsTopology, series)).Result()
		if err != nil || ttl <= 0 || ttl > orders.MinuteSeriesTTL {
			t.Errorf("series %s expires in %v (%v), want within %v", series, ttl, err, orders.MinuteSeriesTTL)
		}
	}
	if st := proc.Stats(); st.Duplicates != 0 {
		t.Fatalf("stats %+v: duplicates before any redelivery", st)
	}
	rowsKey := stem + ":" + orders.MetricsTopology + ":rows"
	appliedBefore, err := rdb.HGetAll(ctx, rowsKey).Result()
	if err != nil {
		t.Fatal(err)
	}

	// Deliver every change again: copy the topic's records onto its end.
	events := copyTopic(t, ctx, brokers, serde.Topic(stem, stem, "orders"))
	if events != 7 { // 3 inserts, 2 updates, 1 delete, 1 insert: each once
		t.Fatalf("the topic holds %d change events, want exactly 7", events)
	}
	// Wait until the processor has handled the copies too: each of its
	// nodes (the Metrics one and two Windowed ones) handles each change.
	waitFor("the processor to handle the redelivered changes", func() bool {
		return proc.Stats().Changes == 2*metricsNodes*events
	})
	if st := proc.Stats(); st.Duplicates != metricsNodes*events {
		t.Fatalf("stats %+v: want %d duplicates", st, metricsNodes*events)
	}
	if got := read(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after redelivery metrics = %v, want %v", got, want)
	}
	if got := redisWindows(ctx, t, metrics); !reflect.DeepEqual(got, wantWindows) {
		t.Fatalf("after redelivery windowed metrics = %v, want %v", got, wantWindows)
	}
	appliedAfter, err := rdb.HGetAll(ctx, rowsKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(appliedBefore, appliedAfter) {
		t.Fatalf("redelivery changed per-row state:\nbefore %v\nafter  %v", appliedBefore, appliedAfter)
	}
	cancel()
	if err := <-procDone; err != nil {
		t.Errorf("processor: %v", err)
	}
	if err := <-captureDone; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// TestRedisApplyIsIdempotent applies one change twice, and an older one
// after a newer one: only the first application of the newest change counts.
func TestRedisApplyIsIdempotent(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("idem_%d", rand.IntN(1_000_000_000))
	m := redismetrics.New(rdb, prefix)
	sample := func(day string, cents int64) []topologies.Sample {
		return []topologies.Sample{{Series: orders.OrdersPerDay, Bucket: day, Value: 1}, {Series: orders.RevenuePerDay, Bucket: day, Value: cents}}
	}
	p1 := change.Position{CommitLSN: 100, Index: 1}
	p2 := change.Position{CommitLSN: 200, Index: 1}
	steps := []struct {
		pos     change.Position
		samples []topologies.Sample
		applied bool
	}{
		{p1, sample("2026-11-20", 1000), true},
		{p1, sample("2026-11-20", 1000), false}, // redelivered
		{p2, sample("2026-11-21", 1500), true},  // moved to another day, new amount
		{p1, sample("2026-11-20", 1000), false}, // an older change, replayed late
		{p2, nil, false},                        // same position, whatever it says
	}
	for i, s := range steps {
		applied, err := m.Apply(ctx, "t", "row-1", s.pos, s.samples)
		if err != nil {
			t.Fatal(err)
		}
		if applied != s.applied {
			t.Fatalf("step %d: applied = %v, want %v", i, applied, s.applied)
		}
	}
	counts, _ := m.Series(ctx, "t", orders.OrdersPerDay)
	revenue, _ := m.Series(ctx, "t", orders.RevenuePerDay)
	if !reflect.DeepEqual(counts, map[string]int64{"2026-11-21": 1}) || !reflect.DeepEqual(revenue, map[string]int64{"2026-11-21": 1500}) {
		t.Fatalf("counts %v revenue %v", counts, revenue)
	}
}

// sqlMetrics computes every series of the order-metrics topology from the
// table with SQL.
func sqlMetrics(t *testing.T, ctx context.Context, db *pgx.Conn, table string) map[string]map[string]int64 {
	t.Helper()
	out := map[string]map[string]int64{}
	queries := []struct {
		series func(key string) string
		sql    string
	}{
		{func(string) string { return orders.OrdersPerDay }, `SELECT '', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) FROM %s GROUP BY 2`},
		{func(string) string { return orders.RevenuePerDay }, `SELECT '', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), sum(amount * 100)::bigint FROM %s GROUP BY 2`},
		{func(string) string { return orders.OrdersPerStatus }, `SELECT '', status, count(*) FROM %s GROUP BY 2`},
		{func(string) string { return orders.TopCustomers }, `SELECT '', customer_id::text, sum(amount * 100)::bigint FROM %s GROUP BY 2`},
		{func(hour string) string { return orders.RevenuePerMinute + ":" + hour },
			`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24'), to_char(created_at AT TIME ZONE 'UTC', 'MI'), sum(amount * 100)::bigint FROM %s GROUP BY 1, 2`},
	}
	for _, q := range queries {
		rows, err := db.Query(ctx, fmt.Sprintf(q.sql, table))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var key, bucket string
			var v int64
			if err := rows.Scan(&key, &bucket, &v); err != nil {
				t.Fatal(err)
			}
			series := q.series(key)
			if out[series] == nil {
				out[series] = map[string]int64{}
			}
			if v != 0 {
				out[series][bucket] = v
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// redisMetrics reads every series of the order-metrics topology from Redis.
func redisMetrics(t *testing.T, ctx context.Context, rdb *redis.Client, m *redismetrics.Store) map[string]map[string]int64 {
	t.Helper()
	out := map[string]map[string]int64{}
	minuteKeys, err := rdb.Keys(ctx, m.SeriesKey(orders.MetricsTopology, orders.RevenuePerMinute)+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	series := []string{orders.OrdersPerDay, orders.RevenuePerDay, orders.OrdersPerStatus}
	for _, k := range minuteKeys {
		series = append(series, strings.TrimPrefix(k, m.SeriesKey(orders.MetricsTopology, "")))
	}
	for _, s := range series {
		v, err := m.Series(ctx, orders.MetricsTopology, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) > 0 {
			out[s] = v
		}
	}
	ranking, err := m.Ranking(ctx, orders.MetricsTopology, orders.TopCustomers)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range ranking {
		if out[orders.TopCustomers] == nil {
			out[orders.TopCustomers] = map[string]int64{}
		}
		out[orders.TopCustomers][z.Member.(string)] = int64(z.Score)
	}
	return out
}

// copyTopic delivers every change of a topic a second time: it copies the
// committed records onto the topic's end and returns how many change events
// (not tombstones) it copied.
func copyTopic(t *testing.T, ctx context.Context, brokers []string, topic string) int64 {
	t.Helper()
	originals := committedRecords(ctx, t, brokers, topic)
	kafka, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	var events int64
	for _, r := range originals {
		if err := kafka.ProduceSync(ctx, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if r.Value != nil {
			events++
		}
	}
	return events
}

// committedRecords reads a topic's committed records (read_committed, no
// transaction markers), up to the end it has when called.
func committedRecords(ctx context.Context, t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	return readRecords(ctx, t, brokers, topic, kgo.ReadCommitted())
}

// readRecords reads a topic's records at isolation level iso (no
// transaction markers), up to the end it has when called.
func readRecords(ctx context.Context, t *testing.T, brokers []string, topic string, iso kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	kafka, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	ends, err := kadm.NewClient(kafka).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{} // partition → end offset not reached yet
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var out []*kgo.Record
	for len(remaining) > 0 {
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		fs := consumer.PollFetches(fctx)
		fcancel()
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset == end-1 {
				delete(remaining, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}
