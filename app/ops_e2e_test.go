package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

// opsEnv is the orders example captured into a schema of its own, and the
// command line of a processor binary running its order metrics, order
// summaries (with their search index) and order events.
type opsEnv struct {
	t      *testing.T
	src    *capturedSource
	dsn    string
	fns    []app.TopologyFunc
	common []string // the settings every command gets
	rdb    *redis.Client
	kafka  *inspect.Kafka
	rng    *rand.Rand
	orders int64 // ids 1..orders were inserted
}

// newOpsEnv sets the orders example up, its capture running until the
// test ends, and commits steps random changes.
func newOpsEnv(t *testing.T, steps int) *opsEnv { return newOpsEnvWith(t, steps, nil) }

// newOpsEnvWith is newOpsEnv with the capture's Config changed by config.
func newOpsEnvWith(t *testing.T, steps int, config func(*capture.Config)) *opsEnv {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	brokers, registryURL, redisAddr, esURL := testenv.KafkaBrokers(t), testenv.RegistryURL(t), testenv.RedisAddr(t), testenv.ESURL(t)
	create := func(stmt string) string { return strings.Replace(stmt, "IF NOT EXISTS ", "", 1) }
	src := newCapturedSourceWith(ctx, t, "ops", brokers, nil, config,
		create(orders.CreateCustomersTable("%s")), create(orders.CreateOrderItemsTable("%s")), create(orders.CreateTable("%s")))
	stem := src.stem
	e := &opsEnv{t: t, src: src, dsn: testenv.PGDSN(t), rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))}
	index, events := stem+"-summaries", "events."+stem+".Order"
	e.fns = []app.TopologyFunc{
		func(s app.Source) *topologies.Topology { return orders.Metrics(s.Prefix, s.Schema) },
		func(s app.Source) *topologies.Topology { return orders.Summaries(s.Prefix, s.Schema, index) },
		func(s app.Source) *topologies.Topology { return orders.Events(s.Prefix, s.Schema, events) },
	}
	e.common = []string{"--kafka-brokers", strings.Join(brokers, ","), "--registry-url", registryURL,
		"--redis-addr", redisAddr, "--redis-prefix", stem, "--es-url", esURL,
		"--topic-prefix", stem, "--schema", stem, "--group", stem, "--http-addr", ""}
	e.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	var err error
	if e.kafka, err = inspect.NewKafka([]kgo.Opt{kgo.SeedBrokers(brokers...)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.kafka.Close()
		if keys, err := e.rdb.Keys(context.Background(), stem+":*").Result(); err == nil && len(keys) > 0 {
			e.rdb.Del(context.Background(), keys...)
		}
		e.rdb.Close()
		if es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{esURL}}); err == nil {
			if res, err := (esapi.IndicesDeleteRequest{Index: []string{index}}).Do(context.Background(), es); err == nil {
				res.Body.Close()
			}
		}
	})
	for c := range 5 {
		src.exec(t, "INSERT INTO "+stem+".customers (id, name, segment) VALUES ($1, $2, $3)", c+1, fmt.Sprintf("customer %d", c+1), []string{"gold", "silver"}[c%2])
	}
	for range steps {
		e.step()
	}
	return e
}

// command runs a command of the binary to its end: its exit status, and
// what it printed (stdout, then stderr).
func (e *opsEnv) command(args ...string) (int, string) {
	return e.commandWithInput("", false, args...)
}

func (e *opsEnv) commandWithInput(input string, terminal bool, args ...string) (int, string) {
	e.t.Helper()
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := app.RunCommand(ctx, append(args, e.common...), strings.NewReader(input), terminal, &out, &errs, e.fns...)
	return code, out.String() + errs.String()
}

// start runs the processors (the binary's run command) until the returned
// function stops them.
func (e *opsEnv) start() (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var log bytes.Buffer // read once run returned
	w := &syncWriter{w: &log}
	go func() {
		done <- app.RunCommand(ctx, append([]string{"run"}, e.common...), nil, false, w, w, e.fns...)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 {
				e.t.Errorf("run exited %d:\n%s", code, log.String())
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// status runs the status command with --json and more flags, and returns
// its report and exit status.
func (e *opsEnv) status(flags ...string) (*inspect.Report, int) {
	e.t.Helper()
	code, out := e.command(append([]string{"status", "--json", "--pg-dsn", e.dsn, "--slot", e.src.stem}, flags...)...)
	var r inspect.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("status (exit %d) printed no report: %v\n%s", code, err, out)
	}
	return &r, code
}

// lag returns the lag of the topology's own consumer group in r.
func (e *opsEnv) lag(r *inspect.Report, topology string) inspect.GroupStatus {
	e.t.Helper()
	for _, g := range r.Groups {
		if g.Name == e.src.stem+"-"+topology {
			return g
		}
	}
	e.t.Fatalf("status reports no group %s-%s: %+v", e.src.stem, topology, r.Groups)
	return inspect.GroupStatus{}
}

// totalLag is the records left to read by every group of r.
func totalLag(r *inspect.Report) int64 {
	var n int64
	for _, g := range r.Groups {
		n += g.Records
	}
	return n
}

// eventually polls cond every 500ms until it holds, failing the test after
// timeout with what last returned.
func (e *opsEnv) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s; last:\n%s", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// step commits a random change of the orders example: orders created, paid,
// shipped, changed and deleted, line items added, moved and deleted,
// customers renamed.
func (e *opsEnv) step() {
	stem, rng := e.src.stem, e.rng
	exec := func(sql string, args ...any) { e.t.Helper(); e.src.exec(e.t, sql, args...) }
	order := func() int64 { return 1 + rng.Int64N(max(e.orders, 1)) }
	switch n := rng.IntN(20); {
	case n < 6 || e.orders == 0:
		e.orders++
		exec("INSERT INTO "+stem+".orders (id, customer_id, amount) VALUES ($1, $2, $3)", e.orders, 1+rng.IntN(6), fmt.Sprintf("%d.%02d", 1+rng.IntN(200), rng.IntN(100)))
	case n < 10:
		exec("UPDATE "+stem+".orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE status END WHERE id = $1", order())
	case n < 11:
		exec("UPDATE "+stem+".orders SET amount = amount + 1 WHERE id = $1", order())
	case n < 12:
		exec("DELETE FROM "+stem+".orders WHERE id = $1", order())
	case n < 16:
		exec("INSERT INTO "+stem+".order_items (order_id, product, quantity, unit_price) VALUES ($1, $2, $3, $4)", order(), "p"+strconv.Itoa(rng.IntN(9)), 1+rng.IntN(4), "2.50")
	case n < 17:
		exec("UPDATE "+stem+".order_items SET order_id = $1 WHERE id = (SELECT min(id) FROM "+stem+".order_items WHERE order_id = $2)", order(), order())
	case n < 18:
		exec("DELETE FROM "+stem+".order_items WHERE id = (SELECT max(id) FROM "+stem+".order_items WHERE order_id = $1)", order())
	default:
		exec("UPDATE "+stem+".customers SET name = $1 WHERE id = $2", fmt.Sprintf("renamed %d", rng.IntN(1000)), 1+rng.IntN(5))
	}
}

// insertOrders commits n orders, one transaction each: n records on the
// orders topic.
func (e *opsEnv) insertOrders(n int) {
	for range n {
		e.orders++
		e.src.exec(e.t, "INSERT INTO "+e.src.stem+".orders (id, customer_id, amount) VALUES ($1, 1, 9.99)", e.orders)
	}
}

// rebuildTimeout bounds how long the binary may take to apply the whole
// workload, after a start or a reset: generous, as every topology rebuilds
// its tables at once, on a machine running other packages' tests too.
const rebuildTimeout = 3 * time.Minute

// verified waits until verify passes, and returns its output.
func (e *opsEnv) verified(what string, flags ...string) string {
	e.t.Helper()
	var out string
	e.eventually(what, rebuildTimeout, func() (bool, string) {
		var code int
		code, out = e.command(append([]string{"verify", "--pg-dsn", e.dsn}, flags...)...)
		return code == 0, out
	})
	return out
}

// caughtUp waits until the sinks equal SQL (so capture has published
// every change) and no group of the binary lags (so the processors
// committed them all).
func (e *opsEnv) caughtUp(what string) *inspect.Report {
	e.t.Helper()
	e.verified(what)
	var r *inspect.Report
	e.eventually(what, rebuildTimeout, func() (bool, string) {
		r, _ = e.status()
		return totalLag(r) == 0, fmt.Sprintf("%+v", r.Groups)
	})
	return r
}

// TestStatusShowsLagGrowWhileStoppedAndFallWhenResumed runs the orders
// example's processors on a workload, stops them and commits more orders:
// the processor binary's status (and cdcflow's, over the groups it lists by
// prefix) counts them in records, exactly, with the age of the oldest, and
// fails --max-lag; once the processors resume, the lag falls to nothing.
func TestStatusShowsLagGrowWhileStoppedAndFallWhenResumed(t *testing.T) {
	ctx := context.Background()
	e := newOpsEnv(t, 100)
	stop := e.start()
	r := e.caughtUp("the processors to catch up")
	if s := r.Slot; s == nil || !s.Exists || !s.Active || s.BehindMillis == nil {
		t.Errorf("slot while capture runs: %+v", s)
	}
	if c := r.Checkpoint; c == nil || !c.Found || !c.Snapshot.Complete() {
		t.Errorf("checkpoint while capture runs: %+v", c)
	}
	if g := e.lag(r, orders.MetricsTopology); g.State != "Stable" || len(g.Members) == 0 {
		t.Errorf("the metrics group while its processor runs: %+v", g)
	}
	stop()

	// Stopped: every order committed is a record the metrics group has not
	// read; the lag grows with them, and ages.
	e.insertOrders(30)
	e.eventually("a lag of 30 records", 30*time.Second, func() (bool, string) {
		r, _ = e.status()
		g := e.lag(r, orders.MetricsTopology)
		return g.Records == 30 && g.Exact, fmt.Sprintf("%+v", g)
	})
	g := e.lag(r, orders.MetricsTopology)
	if g.State != "Empty" || len(g.Members) != 0 || g.LagSeconds <= 0 || g.Oldest.IsZero() {
		t.Errorf("the metrics group while its processor is stopped: %+v", g)
	}
	time.Sleep(time.Second)
	e.insertOrders(20)
	e.eventually("the lag to grow to 50 records", 30*time.Second, func() (bool, string) {
		r, _ = e.status()
		g := e.lag(r, orders.MetricsTopology)
		return g.Records == 50, fmt.Sprintf("%+v", g)
	})
	if later := e.lag(r, orders.MetricsTopology); later.LagSeconds <= g.LagSeconds {
		t.Errorf("the lag's age did not grow: %.3fs, then %.3fs", g.LagSeconds, later.LagSeconds)
	}
	if _, code := e.status("--max-lag", "1h"); code != 0 {
		t.Errorf("status --max-lag 1h: exit %d, want 0 (the oldest record waited less)", code)
	}
	code, out := e.command("status", "--pg-dsn", e.dsn, "--slot", e.src.stem, "--max-lag", "40,1h")
	want := fmt.Sprintf("status: unhealthy: consumer group %s-%s is 50 records behind, more than --max-lag 40", e.src.stem, orders.MetricsTopology)
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("status --max-lag 40: exit %d, want 1 and %q:\n%s", code, want, out)
	}
	t.Logf("status while stopped:\n%s", out)

	// cdcflow status sees the same lag, over the groups it lists by prefix.
	var generic bytes.Buffer
	err := app.RunStatus(ctx, app.StatusFlags{PgDSN: e.dsn, Slot: e.src.stem, CheckpointTopic: "cdcflow.checkpoints",
		TopicPrefix: e.src.stem, Kafka: app.KafkaFlags{Brokers: testenv.KafkaBrokers(t)}, GroupPrefix: e.src.stem + "-",
		ReportFlags: app.ReportFlags{JSON: true}}, &generic)
	var gr inspect.Report
	if err != nil || json.Unmarshal(generic.Bytes(), &gr) != nil {
		t.Fatalf("cdcflow status: %v\n%s", err, generic.String())
	}
	if got := e.lag(&gr, orders.MetricsTopology); got.Records != 50 || len(gr.Groups) != len(r.Groups) {
		t.Errorf("cdcflow status: metrics group %+v, %d groups (the binary's status: %d)", got, len(gr.Groups), len(r.Groups))
	}

	// Resumed: the lag falls to nothing.
	e.start()
	e.caughtUp("the lag to fall to nothing")
	if _, code := e.status("--max-lag", "1"); code != 0 {
		t.Errorf("status --max-lag 1 once caught up: exit %d", code)
	}
}

// TestVerifyPassesThenNamesWhatWasTampered runs the orders example's
// processors on a workload: verify passes (and says events cannot be
// verified); then a Redis bucket and a read model document are altered
// behind the processors' back, and verify fails naming each.
func TestVerifyPassesThenNamesWhatWasTampered(t *testing.T) {
	ctx := context.Background()
	e := newOpsEnv(t, 200)
	e.start()
	for range 50 { // while the processors run
		e.step()
	}
	out := e.verified("verify to pass")
	for _, want := range []string{"verify: ok", "read model summary", "search index " + e.src.stem + "-summaries", "not verifiable: domain events"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify's output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("verify:\n%s", out)

	// A bucket of a series, moved behind the processor's back.
	series := e.src.stem + ":" + orders.MetricsTopology + ":" + orders.OrdersPerStatus
	buckets, err := e.rdb.HGetAll(ctx, series).Result()
	if err != nil || len(buckets) == 0 {
		t.Fatalf("%s: %v %v", series, buckets, err)
	}
	bucket := slicesFirst(buckets)
	n, _ := strconv.ParseInt(buckets[bucket], 10, 64)
	e.rdb.HIncrBy(ctx, series, bucket, 7)
	code, out := e.command("verify", "--pg-dsn", e.dsn, orders.MetricsTopology)
	want := fmt.Sprintf("%s[%s]: source %d, sink %d", orders.OrdersPerStatus, bucket, n, n+7)
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "verify: 1 difference\n") {
		t.Errorf("verify after moving %s[%s]: exit %d, want 1 and %q:\n%s", series, bucket, code, want, out)
	}
	t.Logf("verify after tampering with Redis:\n%s", out)
	e.rdb.HIncrBy(ctx, series, bucket, -7)

	// A document of the read model's table, rewritten behind its back.
	table := engine.TableTopic(engine.ReadModelGroup(e.src.stem+"-"+orders.SummaryTopology, orders.SummaryModel))
	values, err := e.kafka.Table(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	var st engine.ModelState
	for k, v := range values {
		if json.Unmarshal(v, &st) == nil && st.Document != nil {
			key = k
			break
		}
	}
	var doc orders.OrderSummary
	if err := json.Unmarshal(st.Document, &doc); err != nil || key == "" {
		t.Fatalf("no summary in %s: %v", table, err)
	}
	name := doc.CustomerName
	doc.CustomerName = "Mallory"
	st.Document, _ = json.Marshal(doc)
	tampered, _ := json.Marshal(st)
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: table, Key: []byte(key), Value: tampered}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	code, out = e.command("verify", "--pg-dsn", e.dsn, "--json", orders.SummaryTopology)
	var results struct {
		Results []struct {
			Node        string
			Differences []map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	wantDiff := map[string]string{"key": key, "field": "customer_name", "source": strconv.Quote(name), "sink": `"Mallory"`}
	found := false
	for _, r := range results.Results {
		for _, d := range r.Differences {
			found = found || r.Node == "read model summary" && maps.Equal(d, wantDiff)
		}
	}
	if code != 1 || !found {
		t.Errorf("verify after rewriting summary %s: exit %d, want 1 and the difference %v:\n%s", key, code, wantDiff, out)
	}
	code, out = e.command("verify", "--pg-dsn", e.dsn, orders.SummaryTopology)
	if want := fmt.Sprintf("  %s customer_name: source %q, sink \"Mallory\"", key, name); code != 1 || !strings.Contains(out, want) {
		t.Errorf("verify after rewriting summary %s: exit %d, want 1 and %q:\n%s", key, code, want, out)
	}
	t.Logf("verify after tampering with the read model:\n%s", out)
}

// TestVerifyReadsRowsAsCaptureMasksThem: capture publishes the customers'
// names as salted hashes (--mask-columns), which the order summaries carry;
// verify given capture's mask settings reads the rows so, and passes;
// without them it reads the names in clear, and names the difference.
func TestVerifyReadsRowsAsCaptureMasksThem(t *testing.T) {
	const salt = "verify-salt"
	e := newOpsEnvWith(t, 40, func(c *capture.Config) {
		c.MaskColumns, c.MaskSalt = []string{"*.customers.name"}, salt
	})
	e.start()
	masked := []string{"--mask-columns", "*.customers.name", "--mask-salt", salt, orders.SummaryTopology}
	out := e.verified("verify with capture's mask to pass", masked...)
	if !strings.Contains(out, "verify: ok") {
		t.Errorf("verify with the mask:\n%s", out)
	}
	code, out := e.command("verify", "--pg-dsn", e.dsn, orders.SummaryTopology)
	if code != 1 || !regexp.MustCompile(`customer_name: source "[^"]+", sink "[0-9a-f]{64}"`).MatchString(out) {
		t.Errorf("verify without the mask: exit %d, want 1 and the names in clear against their hashes:\n%s", code, out)
	}
	if strings.Contains(out, salt) {
		t.Errorf("verify printed the salt:\n%s", out)
	}
	t.Logf("verify without the mask:\n%s", out)
}

// TestResetRebuildsFromTheStart tampers with a read model and Redis, then
// resets the orders example's topologies: not while their processors run,
// not without a confirmation; once confirmed, their groups, tables, Redis
// keys and search index are gone, and a new run rebuilds every sink equal
// to SQL.
func TestResetRebuildsFromTheStart(t *testing.T) {
	ctx := context.Background()
	e := newOpsEnv(t, 150)
	stop := e.start()
	e.verified("verify to pass before the reset")
	series := e.src.stem + ":" + orders.MetricsTopology + ":" + orders.OrdersPerDay
	e.rdb.HSet(ctx, series, "1999-01-01", 3) // a bucket no order makes

	code, out := e.command("reset", "--all", "--yes")
	if code != 1 || !strings.Contains(out, "the processors are running") || !strings.Contains(out, e.src.stem+"-"+orders.MetricsTopology) {
		t.Errorf("reset while the processors run: exit %d, want 1 and that they run:\n%s", code, out)
	}
	stop()
	if code, out := e.command("reset", "--all"); code != 1 || !strings.Contains(out, "pass --yes") {
		t.Errorf("reset without a terminal or --yes: exit %d:\n%s", code, out)
	}
	if code, out := e.command("reset"); code != 1 || !strings.Contains(out, "name the topologies to reset") {
		t.Errorf("reset of nothing: exit %d:\n%s", code, out)
	}
	if code, out := e.commandWithInput("n\n", true, "reset", "--all"); code != 1 || !strings.Contains(out, "nothing was deleted") {
		t.Errorf("reset, declined: exit %d:\n%s", code, out)
	}
	if n, _ := e.rdb.Exists(ctx, series).Result(); n != 1 {
		t.Fatal("a declined reset deleted Redis keys")
	}
	code, out = e.commandWithInput("y\n", true, "reset", "--all")
	if code != 0 || !strings.Contains(out, "reset: done") {
		t.Fatalf("reset, confirmed: exit %d:\n%s", code, out)
	}
	t.Logf("reset:\n%s", out)
	if keys, _ := e.rdb.Keys(ctx, e.src.stem+":*").Result(); len(keys) != 0 {
		t.Errorf("Redis keys left after the reset: %v", keys)
	}
	r, _ := e.status()
	for _, g := range r.Groups {
		if g.State != "Dead" {
			t.Errorf("group %s after the reset: %s", g.Name, g.State)
		}
	}
	table := engine.TableTopic(engine.ReadModelGroup(e.src.stem+"-"+orders.SummaryTopology, orders.SummaryModel))
	if topics, _ := e.kafka.ListTopics(ctx, table); len(topics) != 0 {
		t.Errorf("topics left after the reset: %v", topics)
	}

	e.start()
	out = e.verified("verify to pass after the reset")
	t.Logf("verify after the reset:\n%s", out)
	// And, apart from verify, the sinks equal SQL.
	perStatus, err := e.rdb.HGetAll(ctx, e.src.stem+":"+orders.MetricsTopology+":"+orders.OrdersPerStatus).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := e.sqlMap(ctx, "SELECT status, count(*)::text FROM "+e.src.stem+".orders GROUP BY 1"); !reflect.DeepEqual(perStatus, want) {
		t.Errorf("orders per status after the reset: %v, SQL says %v", perStatus, want)
	}
	want, err := orders.SummariesFromSQL(ctx, e.src.db, e.src.stem)
	if err != nil {
		t.Fatal(err)
	}
	values, err := e.kafka.Table(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]orders.OrderSummary{}
	for k, v := range values {
		var st engine.ModelState
		var s orders.OrderSummary
		if json.Unmarshal(v, &st) != nil || st.Document == nil || json.Unmarshal(st.Document, &s) != nil {
			continue
		}
		got[k] = s
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order summaries after the reset:\n%v\nSQL says:\n%v", got, want)
	}
}

func (e *opsEnv) sqlMap(ctx context.Context, query string) map[string]string {
	e.t.Helper()
	rows, err := e.src.db.Query(ctx, query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			e.t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func slicesFirst(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
