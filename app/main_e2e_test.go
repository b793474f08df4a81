package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// mainGo is the whole main.go of a user's processor binary.
const mainGo = `package main

import "github.com/cdcflow/cdcflow/app"

func main() {
	app.Main(Shipping)
}
`

// shippingGo is the user's topology, in the same package: shipments and the
// warehouses they leave from, a metric, a read model joining a shipment with
// its warehouse, events of a shipment's lifecycle and a projection of them.
const shippingGo = `package main

import (
	"strconv"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

type Shipment struct {
	ID          int64
	WarehouseID int64
	Status      string
	WeightGrams int64
}

type Warehouse struct {
	ID   int64
	Name string
	City string
}

type ShipmentView struct {
	ID        int64  ` + "`json:\"id\"`" + `
	Status    string ` + "`json:\"status\"`" + `
	Warehouse string ` + "`json:\"warehouse\"`" + `
	City      string ` + "`json:\"city\"`" + `
}

type ShipmentDispatched struct{ ShipmentID, WarehouseID int64 }
type ShipmentDelivered struct{ ShipmentID, WarehouseID int64 }

// WarehouseLoad is, per warehouse, the status of each shipment that left it.
type WarehouseLoad struct {
	Shipments map[string]string ` + "`json:\"shipments\"`" + `
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

func Shipping(src app.Source) *topologies.Topology {
	shipments := app.Table[Shipment](src, "shipments")
	warehouses := app.Table[Warehouse](src, "warehouses")
	events := topologies.EventTopicOf("events."+src.Schema+".Shipment", ShipmentDispatched{}, ShipmentDelivered{})
	mark := func(status string) func(WarehouseLoad, string) WarehouseLoad {
		return func(w WarehouseLoad, shipment string) WarehouseLoad {
			next := map[string]string{shipment: status}
			for k, v := range w.Shipments {
				if k != shipment {
					next[k] = v
				}
			}
			return WarehouseLoad{Shipments: next}
		}
	}
	return topologies.New("shipping",
		topologies.Metrics(shipments, func(s Shipment) []topologies.Sample {
			return []topologies.Sample{
				{Series: "shipments_per_status", Bucket: s.Status, Value: 1},
				{Series: "grams_per_warehouse", Bucket: id(s.WarehouseID), Value: s.WeightGrams},
			}
		}),
		topologies.ReadModel[ShipmentView]("shipment-view",
			topologies.Root(shipments, func(s Shipment) string { return id(s.ID) },
				func(v *ShipmentView, s Shipment) { v.ID, v.Status = s.ID, s.Status }),
			topologies.Reference(warehouses, func(w Warehouse) string { return id(w.ID) },
				func(s Shipment) string { return id(s.WarehouseID) },
				func(v *ShipmentView, w Warehouse) { v.Warehouse, v.City = w.Name, w.City })),
		topologies.Events(shipments, events, func(c topologies.Change[Shipment]) []topologies.Event {
			if c.Op == change.OpDelete || c.Before != nil && c.Before.Status == c.After.Status {
				return nil
			}
			s := c.After
			switch s.Status {
			case "dispatched":
				return []topologies.Event{{AggregateID: id(s.ID), Data: ShipmentDispatched{s.ID, s.WarehouseID}}}
			case "delivered":
				return []topologies.Event{{AggregateID: id(s.ID), Data: ShipmentDelivered{s.ID, s.WarehouseID}}}
			}
			return nil
		}),
		topologies.Projection("warehouse-load", events,
			topologies.On(func(e ShipmentDispatched) string { return id(e.WarehouseID) },
				func(w WarehouseLoad, e topologies.Recorded[ShipmentDispatched]) WarehouseLoad {
					return mark("dispatched")(w, e.AggregateID)
				}),
			topologies.On(func(e ShipmentDelivered) string { return id(e.WarehouseID) },
				func(w WarehouseLoad, e topologies.Recorded[ShipmentDelivered]) WarehouseLoad {
					return mark("delivered")(w, e.AggregateID)
				})),
	)
}
`

// buildUserBinary writes main.go and the topology into a module of their
// own, as a user's repository holds them, requiring cdcflow from this
// checkout, and builds the binary.
func buildUserBinary(t *testing.T) string {
	t.Helper()
	if lines := strings.Count(mainGo, "\n"); lines > 10 {
		t.Fatalf("main.go has %d lines", lines)
	}
	return buildModule(t, map[string]string{"main.go": mainGo, "shipping.go": shippingGo})
}

// repoRoot is the root of this checkout.
func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(here))
}

// buildModule writes files into a module of their own that requires
// cdcflow from this checkout, and builds its main package.
func buildModule(t *testing.T, files map[string]string) string {
	t.Helper()
	repo := repoRoot()
	dir := t.TempDir()
	goMod := "module example.com/shipping\n\ngo 1.26\n\nrequire github.com/cdcflow/cdcflow v0.0.0\n\nreplace github.com/cdcflow/cdcflow => " + repo + "\n"
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files["go.mod"], files["go.sum"] = goMod, string(sum)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "shipping")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processorRun is the user's binary, running.
type processorRun struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	log  *lockedLines
}

type lockedLines struct {
	lines chan string
	all   []string
}

func startBinary(t *testing.T, bin string, env []string) *processorRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--http-addr", addr)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &processorRun{cmd: cmd, url: "http://" + addr, done: make(chan error, 1), log: &lockedLines{lines: make(chan string, 10000)}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.log.lines <- sc.Text()
		}
		r.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return r
}

// output returns what the binary printed so far.
func (r *processorRun) output() string {
	for {
		select {
		case l := <-r.log.lines:
			r.log.all = append(r.log.all, l)
		default:
			return strings.Join(r.log.all, "\n")
		}
	}
}

// get returns the status and body of GET path, status 0 while the binary
// does not answer.
func (r *processorRun) get(path string) (int, []byte) {
	res, err := http.Get(r.url + path)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// TestTenLineMainRunsAUsersTopology builds a user's own processor binary
// (a ten-line main.go over a topology of its own: a table, a metric, a read
// model with a join, an events node and a projection), runs it against the
// real services on a backlog of changes while more keep coming, stops it
// with SIGTERM mid-stream, commits more while it is down, starts it again,
// and checks that every sink equals SQL; /readyz answers 503 until the
// binary caught up, 200 after.
func TestTenLineMainRunsAUsersTopology(t *testing.T) {
	brokers, registryURL, redisAddr := testenv.KafkaBrokers(t), testenv.RegistryURL(t), testenv.RedisAddr(t)
	bin := buildUserBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newCapturedSource(ctx, t, "ship", brokers, nil,
		"CREATE TABLE %s.warehouses (id bigint PRIMARY KEY, name text NOT NULL, city text NOT NULL)",
		"CREATE TABLE %s.shipments (id bigint PRIMARY KEY, warehouse_id bigint NOT NULL, status text NOT NULL, weight_grams bigint NOT NULL)")
	stem, db, captureDone := src.stem, src.db, src.done
	exec1 := func(sql string, args ...any) { t.Helper(); src.exec(t, sql, args...) }

	// The workload: warehouses renamed now and then, shipments created and
	// moved along new → dispatched → delivered.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	nextID := int64(0)
	step := func() {
		switch n := rng.IntN(10); {
		case n == 0:
			w := 1 + rng.IntN(5)
			exec1("INSERT INTO "+stem+".warehouses VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
				w, fmt.Sprintf("depot %d-%d", w, rng.IntN(100)), []string{"Lyon", "Oslo", "Pune"}[rng.IntN(3)])
		case n < 5 || nextID == 0:
			nextID++
			exec1("INSERT INTO "+stem+".shipments VALUES ($1, $2, 'new', $3)", nextID, 1+rng.IntN(6), 100+rng.IntN(5000))
		default:
			exec1("UPDATE "+stem+".shipments SET status = CASE status WHEN 'new' THEN 'dispatched' ELSE 'delivered' END WHERE id = $1 AND status <> 'delivered'",
				1+rng.Int64N(nextID))
		}
	}
	for range 1500 { // a backlog for the binary to catch up with
		step()
	}

	env := []string{"CDCFLOW_KAFKA_BROKERS=" + strings.Join(brokers, ","), "CDCFLOW_REGISTRY_URL=" + registryURL,
		"CDCFLOW_REDIS_ADDR=" + redisAddr, "CDCFLOW_REDIS_PREFIX=" + stem, "CDCFLOW_TOPIC_PREFIX=" + stem,
		"CDCFLOW_SCHEMA=" + stem, "CDCFLOW_GROUP=" + stem}
	run := startBinary(t, bin, env)
	// /readyz answers 503 while the binary catches up with the backlog.
	sawNotReady := false
	waitFor(t, run, "the first answer of /readyz", 60*time.Second, func() bool {
		code, _ := run.get("/readyz")
		sawNotReady = sawNotReady || code == http.StatusServiceUnavailable
		return code != 0
	})
	if !sawNotReady {
		t.Fatal("/readyz answered 200 before the binary caught up with a backlog of 1,500 changes")
	}
	// Mid-stream: more changes while it runs, and SIGTERM once it has
	// applied some of the backlog, not all.
	for range 300 {
		step()
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	waitFor(t, run, "the binary to apply part of the backlog", 60*time.Second, func() bool {
		n, _ := rdb.HLen(ctx, stem+":shipping:rows").Result()
		return n > 0
	})
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-run.done:
		if err != nil {
			t.Fatalf("after SIGTERM the binary exited with %v:\n%s", err, run.output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the binary did not stop within 60s of SIGTERM:\n%s", run.output())
	}
	for range 300 { // committed while it is down
		step()
	}

	run = startBinary(t, bin, env)
	waitFor(t, run, "/readyz to answer 200", 120*time.Second, func() bool {
		code, _ := run.get("/readyz")
		return code == http.StatusOK
	})
	for range 100 { // and a few after it caught up
		step()
	}

	// Every sink equals SQL.
	series := func(name string) map[string]string {
		m, err := rdb.HGetAll(ctx, stem+":shipping:"+name).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sqlMap := func(query string) map[string]string {
		rows, err := db.Query(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		return out
	}
	waitFor(t, run, "the metrics to equal SQL", 120*time.Second, func() bool {
		return reflect.DeepEqual(series("shipments_per_status"), sqlMap("SELECT status, count(*)::text FROM "+stem+".shipments GROUP BY 1")) &&
			reflect.DeepEqual(series("grams_per_warehouse"), sqlMap("SELECT warehouse_id::text, sum(weight_grams)::text FROM "+stem+".shipments GROUP BY 1"))
	})
	type view struct {
		ID        int64  `json:"id"`
		Status    string `json:"status"`
		Warehouse string `json:"warehouse"`
		City      string `json:"city"`
	}
	var views []view
	rows, err := db.Query(ctx, "SELECT s.id, s.status, coalesce(w.name, ''), coalesce(w.city, '') FROM "+stem+".shipments s LEFT JOIN "+stem+".warehouses w ON w.id = s.warehouse_id ORDER BY s.id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v view
		if err := rows.Scan(&v.ID, &v.Status, &v.Warehouse, &v.City); err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
	}
	waitFor(t, run, "the read model to equal SQL", 120*time.Second, func() bool {
		for _, want := range views {
			code, body := run.get("/read-models/shipment-view/" + strconv.FormatInt(want.ID, 10))
			var got view
			if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got != want {
				return false
			}
		}
		return true
	})
	load := map[string]map[string]string{}
	for w, _ := range sqlMap("SELECT DISTINCT warehouse_id::text, '' FROM " + stem + ".shipments WHERE status <> 'new'") {
		load[w] = sqlMap("SELECT id::text, status FROM " + stem + ".shipments WHERE status <> 'new' AND warehouse_id = " + w)
	}
	waitFor(t, run, "the projection to equal SQL", 120*time.Second, func() bool {
		for w, want := range load {
			code, body := run.get("/projections/warehouse-load/" + w)
			var got struct {
				Shipments map[string]string `json:"shipments"`
			}
			if code != http.StatusOK || json.Unmarshal(body, &got) != nil || !reflect.DeepEqual(got.Shipments, want) {
				return false
			}
		}
		return true
	})
	if code, _ := run.get("/read-models/shipment-view/999999"); code != http.StatusNotFound {
		t.Errorf("a shipment that does not exist: %d, want 404", code)
	}
	waitFor(t, run, "/metrics to show the processor's counters, latency, lag and readiness", 30*time.Second, func() bool {
		code, body := run.get("/metrics")
		for _, want := range []string{`cdcflow_processor_changes_total{topology="shipping"}`,
			`cdcflow_processor_apply_latency_seconds_count{topology="shipping"}`,
			`cdcflow_processor_lag_records{group="` + stem + `-shipping",topology="shipping"}`,
			`cdcflow_processor_ready{topology="shipping"} 1`} {
			if code != http.StatusOK || !strings.Contains(string(body), want) {
				return false
			}
		}
		return true
	})
	t.Logf("%d shipments, %d warehouses with departures; the binary's log ends:\n%s", len(views), len(load), tail(run.output(), 5))
	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-run.done; err != nil {
		t.Errorf("second run: exited with %v", err)
	}
	cancel()
	if err := <-captureDone; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout or as
// soon as the binary exits.
func waitFor(t *testing.T, run *processorRun, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-run.done:
			t.Fatalf("the binary exited (%v) while waiting for %s:\n%s", err, what, run.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; the binary's log:\n%s", what, tail(run.output(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// capturedSource is a schema of the test's own, its tables captured to
// Kafka by a running capture under the topic prefix of the schema's name.
type capturedSource struct {
	stem string
	db   *pgx.Conn
	done chan error // capture's Run result

	stop    context.CancelFunc // ends capture's Run, once run started it
	stopped chan struct{}      // closed once Run returned
}

// newCapturedSource creates a schema named after name, its tables (each
// create statement has one %s for the schema), and runs capture of them to
// brokers with the franz-go options opts until ctx ends.
func newCapturedSource(ctx context.Context, t *testing.T, name string, brokers []string, opts []kgo.Opt, creates ...string) *capturedSource {
	t.Helper()
	return newCapturedSourceWith(ctx, t, name, brokers, opts, nil, creates...)
}

// newCapturedSourceWith is newCapturedSource with the capture's Config
// changed by config.
func newCapturedSourceWith(ctx context.Context, t *testing.T, name string, brokers []string, opts []kgo.Opt, config func(*capture.Config), creates ...string) *capturedSource {
	t.Helper()
	return startCapturedSourceWith(ctx, t, fmt.Sprintf("%s_%d", name, rand.IntN(1_000_000_000)), brokers, opts, config, creates...)
}

// startCapturedSource is newCapturedSource with the schema's name stem.
func startCapturedSource(ctx context.Context, t *testing.T, stem string, brokers []string, opts []kgo.Opt, creates ...string) *capturedSource {
	t.Helper()
	return startCapturedSourceWith(ctx, t, stem, brokers, opts, nil, creates...)
}

// startCapturedSourceWith is newCapturedSourceWith with the schema's name
// stem.
func startCapturedSourceWith(ctx context.Context, t *testing.T, stem string, brokers []string, opts []kgo.Opt, config func(*capture.Config), creates ...string) *capturedSource {
	t.Helper()
	s, tables := newSourceStem(ctx, t, stem, creates...)
	reg, err := sr.NewClient(sr.URLs(testenv.RegistryURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := capture.Config{DSN: testenv.PGDSN(t), Tables: tables, Brokers: brokers, KafkaOptions: opts,
		TopicPrefix: s.stem, Slot: s.stem, Publication: s.stem, StatusInterval: 200 * time.Millisecond}
	if config != nil {
		config(&cfg)
	}
	cp, err := capture.New(cfg, serde.NewEncoder(reg, s.stem))
	if err != nil {
		t.Fatal(err)
	}
	s.run(ctx, t, cp)
	return s
}

// newSource creates a schema named after name and its tables (each create
// statement has one %s for the schema), dropped with the capture's slot and
// publication (named after the schema) when the test ends, and returns the
// tables' names.
func newSource(ctx context.Context, t *testing.T, name string, creates ...string) (*capturedSource, []string) {
	t.Helper()
	return newSourceStem(ctx, t, fmt.Sprintf("%s_%d", name, rand.IntN(1_000_000_000)), creates...)
}

// newSourceStem is newSource with the schema's name stem.
func newSourceStem(ctx context.Context, t *testing.T, stem string, creates ...string) (*capturedSource, []string) {
	t.Helper()
	db, err := pgx.Connect(ctx, testenv.PGDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &capturedSource{stem: stem, db: db, done: make(chan error, 1), stopped: make(chan struct{})}
	// Capture stops before its slot is dropped, whatever the order of the
	// test's own cleanups: a capture still running would make the slot anew.
	t.Cleanup(func() {
		if s.stop != nil {
			s.stop()
			select {
			case <-s.stopped:
			case <-time.After(60 * time.Second):
				t.Errorf("capture of %s did not stop within 60s", stem)
			}
		}
		bg := context.Background()
		testenv.DropSlot(bg, db, stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
		db.Exec(bg, "DROP SCHEMA "+stem+" CASCADE")
		db.Close(bg)
	})
	s.exec(t, "CREATE SCHEMA "+stem)
	var tables []string
	for _, create := range creates {
		stmt := fmt.Sprintf(create, stem)
		s.exec(t, stmt)
		tables = append(tables, strings.Fields(stmt)[2])
	}
	return s, tables
}

// run runs cp until ctx ends, its result in s.done, and waits until it
// streams.
func (s *capturedSource) run(ctx context.Context, t *testing.T, cp *capture.Capture) {
	t.Helper()
	ctx, s.stop = context.WithCancel(ctx)
	go func() {
		defer close(s.stopped)
		s.done <- cp.Run(ctx)
	}()
	select {
	case <-cp.Streaming():
	case err := <-s.done:
		t.Fatalf("capture: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("capture did not stream within 60s")
	}
}

func (s *capturedSource) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// countDocs returns how many documents index holds in Elasticsearch at
// esURL once refreshed, -1 when Elasticsearch does not answer.
func countDocs(esURL, index string) int {
	http.Post(esURL+"/"+index+"/_refresh", "application/json", nil)
	res, err := http.Get(esURL + "/" + index + "/_count")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var c struct{ Count int }
	json.NewDecoder(res.Body).Decode(&c)
	return c.Count
}
