package capture_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// registryBehindProxy makes the fixture's capture reach the schema registry
// through a proxy the test can cut.
func registryBehindProxy(f *fixture) *testenv.Proxy {
	f.t.Helper()
	u, err := url.Parse(testenv.RegistryURL(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	proxy := testenv.NewProxy(f.t, u.Host)
	reg, err := sr.NewClient(sr.URLs("http://" + proxy.Addr()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.enc = serde.NewEncoder(reg, f.prefix)
	return proxy
}

// registryRetries returns how often capture retried the registry.
func registryRetries(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	v, _ := metricValue(t, reg, "cdcflow_capture_retries_total", map[string]string{"service": "registry"})
	return v
}

// waitRetries waits until capture retried the registry more than n times.
func waitRetries(t *testing.T, reg *prometheus.Registry, n float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for registryRetries(t, reg) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("capture did not retry the unreachable registry within 30s (%v retries)", registryRetries(t, reg))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readUntilQuiet reads topic with read_committed isolation until no record
// came for quiet.
func (f *fixture) readUntilQuiet(topic string, quiet time.Duration) []*kgo.Record {
	f.t.Helper()
	cl := f.reader(topic)
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		fs := cl.PollFetches(ctx)
		cancel()
		if len(fs.Records()) == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

// checkExactlyOnce checks that topic holds each of want (id → op codes in
// order, "" for a tombstone) exactly once, and nothing else.
func (f *fixture) checkExactlyOnce(topic string, want map[int32][]string) {
	f.t.Helper()
	n := 0
	for _, ops := range want {
		n += len(ops)
	}
	got := map[int32][]string{}
	for _, r := range f.consumeAtLeast(topic, n, 120*time.Second, 3*time.Second) {
		id, _ := r.key["id"].(int32)
		op := ""
		if r.event != nil {
			op = r.event.Op.String()
		}
		got[id] = append(got[id], op)
	}
	for id, ops := range want {
		if fmt.Sprint(got[id]) != fmt.Sprint(ops) {
			f.t.Errorf("id %d: records %q, want %q", id, got[id], ops)
		}
	}
	if len(got) != len(want) {
		f.t.Errorf("records of %d ids, want %d", len(got), len(want))
	}
}

// TestRegistryOutageIsWaitedOut: while the schema registry is unreachable,
// capture cannot register the schema of a table's first change, nor the new
// one after ALTER TABLE ADD COLUMN; it waits with backoff instead of
// stopping, and once the registry answers every change arrives exactly once
// for read_committed consumers, none in the dead-letter topic.
func TestRegistryOutageIsWaitedOut(t *testing.T) {
	f := newFixture(t)
	proxy := registryBehindProxy(f)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, note text NOT NULL)", f.name))
	metrics := prometheus.NewRegistry()
	// Logical decoding messages are the database's, not the publication's:
	// leave out other sessions' to count the transaction topic's records.
	c := f.startCapture(capture.Config{Metrics: metrics, MessagePrefixes: []string{f.name}})
	topic := serde.Topic(f.prefix, "public", f.name)
	want := map[int32][]string{}
	transactions := 0

	// The table's schema is not registered yet: its first change waits for
	// the registry, 10s of writes and an ALTER TABLE long.
	proxy.Block()
	var id int32
	writeFor := func(d time.Duration, sql string) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(400 * time.Millisecond) {
			id++
			f.exec(sql, id)
			want[id] = []string{"c"}
			transactions++
		}
	}
	writeFor(5*time.Second, "INSERT INTO "+f.name+" VALUES ($1, 'before')")
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN score int")
	writeFor(5*time.Second, "INSERT INTO "+f.name+" VALUES ($1, 'after', $1)")
	waitRetries(t, metrics, 0)
	if recs := f.readUntilQuiet(topic, 2*time.Second); len(recs) != 0 {
		t.Fatalf("%d changes published while the registry was unreachable", len(recs))
	}
	proxy.Unblock()
	f.consumeAtLeast(topic, int(id), 120*time.Second, 0)

	// A schema change while the registry is unreachable: capture reaches it
	// and waits again.
	retries := registryRetries(t, metrics)
	proxy.Block()
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN level int NOT NULL DEFAULT 1")
	f.exec("UPDATE " + f.name + " SET level = 2 WHERE id = 1")
	f.exec("DELETE FROM " + f.name + " WHERE id = 2")
	id++
	f.exec("INSERT INTO "+f.name+" VALUES ($1, 'last', 0, 3)", id)
	want[1], want[2], want[id] = []string{"c", "u"}, []string{"c", "d", ""}, []string{"c"}
	transactions += 3
	waitRetries(t, metrics, retries)
	time.Sleep(2 * time.Second)
	proxy.Unblock()

	f.checkExactlyOnce(topic, want)
	if recs := f.readUntilQuiet(serde.TransactionTopic(f.prefix), 3*time.Second); len(recs) != 2*transactions {
		t.Errorf("%d records in the transaction topic, want BEGIN and END of %d transactions", len(recs), transactions)
	}
	if recs := f.readUntilQuiet(f.prefix+".dlq", 2*time.Second); len(recs) != 0 || c.Stats().DeadLettered != 0 {
		t.Errorf("%d dead letters (stats %+v), want none", len(recs), c.Stats())
	}
	t.Logf("capture retried the registry %v times", registryRetries(t, metrics))
}

// TestStopWhileRegistryUnavailable: capture waiting for the registry (to
// register the schema after an ALTER TABLE) stops as soon as its context
// ends, and the next start publishes what it could not, once.
func TestStopWhileRegistryUnavailable(t *testing.T) {
	f := newFixture(t)
	proxy := registryBehindProxy(f)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	metrics := prometheus.NewRegistry()
	_, stop := f.run(capture.Config{Metrics: metrics}, true)
	topic := serde.Topic(f.prefix, "public", f.name)
	f.exec("INSERT INTO " + f.name + " VALUES (0)")
	f.consume(topic, 1) // a checkpoint is committed
	proxy.Block()
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN note text") // a schema to register
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	waitRetries(t, metrics, 0)
	started := time.Now()
	stop()
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("capture took %v to stop while waiting for the registry", took)
	}
	proxy.Unblock()
	f.waitSlotReleased()
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (2)")
	f.checkExactlyOnce(topic, map[int32][]string{0: {"c"}, 1: {"c"}, 2: {"c"}})
}

// TestRegistryOutageDuringSnapshot: a snapshot waits for the registry too.
func TestRegistryOutageDuringSnapshot(t *testing.T) {
	f := newFixture(t)
	proxy := registryBehindProxy(f)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.exec("INSERT INTO " + f.name + " SELECT generate_series(1, 3)")
	metrics := prometheus.NewRegistry()
	proxy.Block()
	f.startSnapshot(capture.Config{Metrics: metrics})
	waitRetries(t, metrics, 2)
	proxy.Unblock()
	f.checkExactlyOnce(serde.Topic(f.prefix, "public", f.name), map[int32][]string{1: {"r"}, 2: {"r"}, 3: {"r"}})
}
