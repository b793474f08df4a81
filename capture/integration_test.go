package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// fixture is one capture against the real services, on its own table, slot,
// publication and topic prefix so that tests never see each other's data.
type fixture struct {
	t       *testing.T
	dsn     string
	db      *pgx.Conn
	name    string // table, slot, publication and prefix stem
	prefix  string
	brokers []string
	reg     *sr.Client
	enc     *serde.Encoder // capture's encoder; nil: one on reg
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureIn(t, testenv.PGDSN(t))
}

// newFixtureIn is newFixture on the database dsn names.
func newFixtureIn(t *testing.T, dsn string) *fixture {
	t.Helper()
	f := &fixture{t: t, dsn: dsn, brokers: testenv.KafkaBrokers(t)}
	var err error
	if f.reg, err = sr.NewClient(sr.URLs(testenv.RegistryURL(t))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if f.db, err = pgx.Connect(ctx, f.dsn); err != nil {
		t.Fatal(err)
	}
	f.name = fmt.Sprintf("it_%d_%d", time.Now().Unix(), rand.IntN(1_000_000))
	f.prefix = "cap" + f.name
	t.Cleanup(func() {
		ctx := context.Background()
		testenv.DropSlot(ctx, f.db, f.name)
		f.db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+f.name)
		f.db.Exec(ctx, "DROP TABLE IF EXISTS "+f.name)
		f.db.Close(ctx)
	})
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// waitSlotReleased waits until no walsender holds the fixture's slot: after
// a capture stops, its walsender on the server may take a moment to exit,
// and until then the slot is active (SQLSTATE 55006 for whoever wants it).
func (f *fixture) waitSlotReleased() {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		err := f.db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", f.name).Scan(&active)
		if err != nil {
			f.t.Fatalf("slot %s: %v", f.name, err)
		}
		if !active {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("slot %s still active 30s after capture stopped", f.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dropSlot drops the fixture's replication slot once it is released.
func (f *fixture) dropSlot() {
	f.t.Helper()
	f.waitSlotReleased()
	f.exec("SELECT pg_drop_replication_slot($1)", f.name)
}

func (f *fixture) walLSN() change.LSN {
	f.t.Helper()
	var s string
	if err := f.db.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		f.t.Fatal(err)
	}
	lsn, err := change.ParseLSN(s)
	if err != nil {
		f.t.Fatal(err)
	}
	return lsn
}

// start runs capture until the test ends and waits until it streams.
func (f *fixture) start(cfg capture.Config) (stop func()) {
	f.t.Helper()
	_, stop = f.run(cfg, true)
	return stop
}

// startSnapshot starts capture without waiting for it to stream: it may
// still be reading a snapshot when startSnapshot returns.
func (f *fixture) startSnapshot(cfg capture.Config) (stop func()) {
	f.t.Helper()
	_, stop = f.run(cfg, false)
	return stop
}

// startCapture is start for tests that read the capture's stats.
func (f *fixture) startCapture(cfg capture.Config) *capture.Capture {
	f.t.Helper()
	c, _ := f.run(cfg, true)
	return c
}

// capture returns a Capture of cfg on the fixture's table, slot,
// publication, topic prefix and services.
func (f *fixture) capture(cfg capture.Config) *capture.Capture {
	f.t.Helper()
	cfg.DSN, cfg.TopicPrefix, cfg.Slot, cfg.Publication = f.dsn, f.prefix, f.name, f.name
	if cfg.Tables == nil {
		cfg.Tables = []string{"public." + f.name}
	}
	cfg.StatusInterval = 200 * time.Millisecond
	if os.Getenv("CDCFLOW_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg.Brokers = f.brokers
	enc := f.enc
	if enc == nil {
		enc = serde.NewEncoder(f.reg, f.prefix)
	}
	c, err := capture.New(cfg, enc)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) run(cfg capture.Config, waitStreaming bool) (c *capture.Capture, stop func()) {
	f.t.Helper()
	c = f.capture(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if waitStreaming {
		select {
		case <-c.Streaming():
		case err := <-done:
			cancel()
			f.t.Fatalf("capture stopped before streaming: %v", err)
		case <-time.After(120 * time.Second):
			f.t.Fatal("capture did not start streaming within 120s")
		}
	}
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("capture: %v", err)
		}
	}
	f.t.Cleanup(stop)
	return c, stop
}

// record is a consumed change: its decoded key and envelope (nil for a
// tombstone).
type record struct {
	key   change.Row
	event *change.Event
}

// consume reads n records of topic with read_committed isolation.
func (f *fixture) consume(topic string, n int) []record {
	f.t.Helper()
	return f.consumeAtLeast(topic, n, 60*time.Second, 0)
}

// reader returns a client that reads topic from the start with
// read_committed isolation.
func (f *fixture) reader(topic string) *kgo.Client {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		f.t.Fatal(err)
	}
	return cl
}

// consumeAtLeast reads records of topic with read_committed isolation until
// it has n, then what else arrives within linger; it fails the test if
// fewer than n arrive within timeout.
func (f *fixture) consumeAtLeast(topic string, n int, timeout, linger time.Duration) []record {
	f.t.Helper()
	out := f.consumeUpTo(topic, n, timeout, linger)
	if len(out) < n {
		f.t.Fatalf("read %d of %d records from %s before timing out", len(out), n, topic)
	}
	return out
}

// consumeUpTo is consumeAtLeast that returns what it read when it times
// out instead of failing, for the caller to say what is missing.
func (f *fixture) consumeUpTo(topic string, n int, timeout, linger time.Duration) []record {
	f.t.Helper()
	cl := f.reader(topic)
	defer cl.Close()
	dec := serde.NewDecoder(f.reg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []record
	var quiet time.Time
	for len(out) < n || time.Now().Before(quiet) {
		pctx, pcancel := ctx, context.CancelFunc(func() {})
		if !quiet.IsZero() {
			pctx, pcancel = context.WithDeadline(ctx, quiet)
		}
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			return out
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				f.t.Logf("fetch %s/%d: %v", t, p, err)
			}
		})
		for _, r := range fs.Records() {
			key, err := dec.DecodeKey(ctx, r.Key)
			if err != nil {
				f.t.Fatal(err)
			}
			ev, err := dec.DecodeEvent(ctx, r.Value)
			if err != nil {
				f.t.Fatal(err)
			}
			out = append(out, record{key: key, event: ev})
		}
		if len(out) >= n && quiet.IsZero() {
			quiet = time.Now().Add(linger)
		}
	}
	return out
}

// rawRecords reads n records of topic with read_committed isolation, as
// they are on the wire.
func (f *fixture) rawRecords(topic string, n int) []*kgo.Record {
	f.t.Helper()
	cl := f.reader(topic)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			f.t.Fatalf("read %d of %d records from %s before timing out", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func TestCaptureInsertUpdateDelete(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %s (
		id bigint PRIMARY KEY, customer_id integer NOT NULL, status text NOT NULL,
		amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, note text)`, f.name))
	f.start(capture.Config{})

	created := time.Date(2026, 11, 21, 9, 15, 0, 250000000, time.UTC)
	var bounds [][2]change.LSN
	step := func(sql string, args ...any) {
		from := f.walLSN()
		f.exec(sql, args...)
		bounds = append(bounds, [2]change.LSN{from, f.walLSN()})
	}
	step("INSERT INTO "+f.name+" VALUES (1, 7, 'new', 42.50, $1, NULL)", created)
	step("UPDATE " + f.name + " SET amount = 45.00, status = 'paid' WHERE id = 1")
	f.exec("ALTER TABLE " + f.name + " REPLICA IDENTITY FULL")
	step("UPDATE " + f.name + " SET note = 'gift' WHERE id = 1")
	step("DELETE FROM " + f.name + " WHERE id = 1")

	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 5)
	row := func(amount *big.Rat, status string, note any) change.Row {
		return change.Row{"id": int64(1), "customer_id": int32(7), "status": status, "amount": amount,
			"created_at": created, "note": note}
	}
	want := []struct {
		op            change.Op
		before, after change.Row
	}{
		{change.OpCreate, nil, row(big.NewRat(4250, 100), "new", nil)},
		{change.OpUpdate, nil, row(big.NewRat(45, 1), "paid", nil)}, // REPLICA IDENTITY DEFAULT: no before image
		{change.OpUpdate, row(big.NewRat(45, 1), "paid", nil), row(big.NewRat(45, 1), "paid", "gift")},
		{change.OpDelete, row(big.NewRat(45, 1), "paid", "gift"), nil},
	}
	var last change.Position
	var prevCommit change.LSN
	for i, w := range want {
		r := recs[i]
		if !reflect.DeepEqual(r.key, change.Row{"id": int64(1)}) {
			t.Errorf("record %d: key = %v, want id=1", i, r.key)
		}
		ev := r.event
		if ev == nil {
			t.Fatalf("record %d is a tombstone, want op %s", i, w.op)
		}
		if ev.Op != w.op || !reflect.DeepEqual(ev.Before, w.before) || !reflect.DeepEqual(ev.After, w.after) {
			t.Errorf("record %d:\n got op=%s before=%v after=%v\nwant op=%s before=%v after=%v", i, ev.Op, ev.Before, ev.After, w.op, w.before, w.after)
		}
		s := ev.Source
		if s.Connector != "postgresql" || s.Name != f.prefix || s.Schema != "public" || s.Table != f.name ||
			s.DB != "cdcflow" || s.Snapshot != "false" || s.Version != capture.Version || s.TxID == 0 {
			t.Errorf("record %d: source = %+v", i, s)
		}
		if s.LSN < bounds[i][0] || s.LSN >= bounds[i][1] {
			t.Errorf("record %d: source.lsn %s outside the WAL written by its statement [%s, %s]", i, s.LSN, bounds[i][0], bounds[i][1])
		}
		// Debezium's SourceInfo.sequence: the end of the last transaction
		// committed before (after the previous statement's commit, before
		// this statement), then the change's own LSN.
		lastCommit, lsn, err := change.ParseSequence(s.Sequence)
		if err != nil || lsn != s.LSN || (i > 0 && (lastCommit <= prevCommit || lastCommit > bounds[i][0])) {
			t.Errorf("record %d: source.sequence %s is not [end of the last commit, lsn %s] (previous commit %s, statement from %s): %v",
				i, s.Sequence, s.LSN, prevCommit, bounds[i][0], err)
		}
		// Debezium's transaction.id is <txId>:<the change's LSN>;
		// commit_lsn, cdcflow's, is the commit's, with total_order the
		// position.
		tx := ev.Transaction
		if tx == nil || tx.TotalOrder != 1 || tx.DataCollectionOrder != 1 || tx.ID != fmt.Sprintf("%d:%d", s.TxID, uint64(s.LSN)) ||
			tx.CommitLSN <= s.LSN || tx.CommitLSN >= bounds[i][1] || ev.Position != (change.Position{CommitLSN: tx.CommitLSN, Index: 1}) {
			t.Errorf("record %d: transaction = %+v, position %s", i, tx, ev.Position)
		}
		if s.Origin != "" || s.OriginLSN != 0 {
			t.Errorf("record %d: a local transaction has origin %q at %s", i, s.Origin, s.OriginLSN)
		}
		if ev.Position.Compare(last) <= 0 {
			t.Errorf("record %d: position %s not after %s", i, ev.Position, last)
		}
		last = ev.Position
		if tx != nil {
			prevCommit = tx.CommitLSN
		}
	}
	if recs[4].event != nil || !reflect.DeepEqual(recs[4].key, change.Row{"id": int64(1)}) {
		t.Errorf("record 4 = %+v, want the tombstone of id=1", recs[4])
	}

	// The slot is confirmed past the delete once its Kafka transaction committed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var confirmed string
		if err := f.db.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", f.name).Scan(&confirmed); err != nil {
			t.Fatal(err)
		}
		lsn, _ := change.ParseLSN(confirmed)
		if lsn > last.CommitLSN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot confirmed at %s, never past the last commit %s", confirmed, last.CommitLSN)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCaptureResumesAfterRestartWithoutLoss(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text NOT NULL)", f.name))
	stop := f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 'a')")
	f.consume(serde.Topic(f.prefix, "public", f.name), 1)
	stop()
	f.exec("INSERT INTO " + f.name + " VALUES (2, 'b')") // committed while capture is down
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (3, 'c')")
	// Each row once: order across keys depends on partitioning, so compare
	// by position instead.
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 3)
	sort.Slice(recs, func(i, j int) bool { return recs[i].event.Position.Compare(recs[j].event.Position) < 0 })
	for i, r := range recs {
		if got := r.event.After["id"]; got != int32(i+1) {
			t.Errorf("record %d (by position) has id %v, want %d", i, got, i+1)
		}
	}
	// The last commit read before a restart is in the checkpoint, as in
	// Debezium's offsets: the change committed while capture was down
	// names a commit at or after the first row's.
	if lastCommit, _, err := change.ParseSequence(recs[1].event.Source.Sequence); err != nil || lastCommit <= recs[0].event.Position.CommitLSN {
		t.Errorf("after the restart source.sequence is %s (%v), want the end of a commit after %s", recs[1].event.Source.Sequence, err, recs[0].event.Position.CommitLSN)
	}
}

func TestBrokenSetupsFailWithOneClearLine(t *testing.T) {
	dsn := testenv.PGDSN(t)
	brokers := testenv.KafkaBrokers(t)
	reg, _ := sr.NewClient(sr.URLs(testenv.RegistryURL(t)))
	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	nokey := fmt.Sprintf("it_nokey_%d", rand.IntN(1_000_000))
	if _, err := db.Exec(context.Background(), "CREATE TABLE "+nokey+" (line text)"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec(context.Background(), "DROP TABLE "+nokey)

	for _, tc := range []struct {
		name    string
		dsn     string
		brokers []string
		table   string
		want    []string
	}{
		{"postgres unreachable", "postgres://cdcflow:secret-pw@127.0.0.1:1/cdcflow?sslmode=disable&connect_timeout=3", brokers, "public.orders",
			[]string{"PostgreSQL unreachable at 127.0.0.1:1", "check --pg-dsn and that PostgreSQL is running"}},
		{"wal_level not logical", testenv.PGBadWALDSN(t), brokers, "public.orders",
			[]string{"wal_level is replica", "set wal_level=logical", "restart PostgreSQL"}},
		{"table without primary key", dsn, brokers, "public." + nokey,
			[]string{"table public." + nokey + " has no primary key or replica identity index", "add a primary key", "REPLICA IDENTITY USING INDEX"}},
		{"kafka unreachable", dsn, []string{"127.0.0.1:1"}, "public." + nokey,
			[]string{"Kafka unreachable at [127.0.0.1:1]", "check --kafka-brokers and that Kafka is running"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "kafka unreachable" {
				// a table with a key, so that only Kafka is wrong
				tc.table = "public.it_keyed"
				db.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS it_keyed (id int PRIMARY KEY)")
			}
			c, err := capture.New(capture.Config{DSN: tc.dsn, Tables: []string{tc.table}, Brokers: tc.brokers,
				Slot: "it_broken", Publication: "it_broken"}, serde.NewEncoder(reg, "broken"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = c.Run(ctx)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			if strings.Contains(msg, "secret-pw") {
				t.Errorf("error shows the password: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

func TestPrimaryKeyUpdateIsDeleteThenCreate(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text NOT NULL)", f.name))
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 'a')")
	f.exec("UPDATE " + f.name + " SET id = 2 WHERE id = 1")
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 4)
	byKey := map[int32][]record{} // arrival order within a key is partition order
	for _, r := range recs {
		id := r.key["id"].(int32)
		byKey[id] = append(byKey[id], r)
	}
	old, created := byKey[1], byKey[2]
	if len(old) != 3 || len(created) != 1 {
		t.Fatalf("%d records for id 1 and %d for id 2, want 3 and 1", len(old), len(created))
	}
	if ev := old[0].event; ev == nil || ev.Op != change.OpCreate || !reflect.DeepEqual(ev.After, change.Row{"id": int32(1), "v": "a"}) {
		t.Errorf("first record of id 1: %+v, want the insert", ev)
	}
	del := old[1].event
	if del == nil || del.Op != change.OpDelete || del.After != nil || !reflect.DeepEqual(del.Before, change.Row{"id": int32(1), "v": ""}) {
		t.Errorf("second record of id 1: %+v, want a delete with the key-only before image", del)
	}
	if old[2].event != nil {
		t.Errorf("third record of id 1: %+v, want the tombstone", old[2].event)
	}
	cr := created[0].event
	if cr == nil || cr.Op != change.OpCreate || cr.Before != nil || !reflect.DeepEqual(cr.After, change.Row{"id": int32(2), "v": "a"}) {
		t.Errorf("record of id 2: %+v, want a create", cr)
	}
	if del != nil && cr != nil && (del.Position.CommitLSN != cr.Position.CommitLSN || cr.Position.Index != del.Position.Index+1) {
		t.Errorf("delete %v and create %v are not consecutive changes of one transaction", del.Position, cr.Position)
	}
}

func TestNoTombstones(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.start(capture.Config{NoTombstones: true})
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	f.exec("DELETE FROM " + f.name + " WHERE id = 1")
	f.exec("INSERT INTO " + f.name + " VALUES (2)")
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 3)
	for i, r := range recs {
		if r.event == nil {
			t.Fatalf("record %d is a tombstone", i)
		}
	}
}

func TestUnchangedToastedValues(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, n int NOT NULL, doc text)", f.name))
	f.exec("ALTER TABLE " + f.name + " ALTER COLUMN doc SET STORAGE EXTERNAL") // TOAST without compression
	f.start(capture.Config{})
	big := strings.Repeat("0123456789", 1000)
	f.exec("INSERT INTO "+f.name+" VALUES (1, 1, $1)", big)
	f.exec("UPDATE " + f.name + " SET n = 2 WHERE id = 1") // doc unchanged: not sent
	f.exec("ALTER TABLE " + f.name + " REPLICA IDENTITY FULL")
	f.exec("UPDATE " + f.name + " SET n = 3 WHERE id = 1") // with a full before image it is known
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 3)
	if recs[0].event.After["doc"] != big {
		t.Errorf("insert carries doc of %d bytes", len(fmt.Sprint(recs[0].event.After["doc"])))
	}
	if got := recs[1].event.After; got["n"] != int32(2) || got["doc"] != (change.Unavailable{}) {
		t.Errorf("update under REPLICA IDENTITY DEFAULT: after = n %v, doc %T; want n 2 and change.Unavailable", got["n"], got["doc"])
	}
	if got := recs[2].event.After; got["n"] != int32(3) || got["doc"] != big {
		t.Errorf("update under REPLICA IDENTITY FULL: after = n %v, doc of %d bytes; want n 3 and the document", got["n"], len(fmt.Sprint(got["doc"])))
	}
}

func TestTransactionTopic(t *testing.T) {
	f := newFixture(t)
	other := f.name + "_b"
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", other))
	t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+other) })
	f.start(capture.Config{Tables: []string{"public." + f.name, "public." + other}})
	tx, err := f.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"INSERT INTO " + f.name + " VALUES (1), (2)", "INSERT INTO " + other + " VALUES (1)"} {
		if _, err := tx.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	changes := f.consume(serde.Topic(f.prefix, "public", other), 1)
	ev := changes[0].event

	dec := serde.NewDecoder(f.reg)
	ctx := context.Background()
	var got []serde.TransactionRecord
	for _, r := range f.rawRecords(serde.TransactionTopic(f.prefix), 2) {
		rec, err := dec.DecodeTransaction(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if key, err := dec.DecodeKey(ctx, r.Key); err != nil || key["id"] != rec.ID {
			t.Errorf("key %v (%v) for transaction %s", key, err, rec.ID)
		}
		got = append(got, rec)
	}
	// Debezium's ids: <txId>:<LSN of the BEGIN> (at or before the first
	// change) and <txId>:<end LSN> (after the commit record).
	var begin, end change.LSN
	if _, err := fmt.Sscanf(got[0].ID, fmt.Sprintf("%d:%%d", ev.Source.TxID), &begin); err != nil || begin == 0 || begin > ev.Source.LSN {
		t.Errorf("BEGIN id %s: want %d:<LSN of the BEGIN, at most %d> (%v)", got[0].ID, ev.Source.TxID, uint64(ev.Source.LSN), err)
	}
	if _, err := fmt.Sscanf(got[1].ID, fmt.Sprintf("%d:%%d", ev.Source.TxID), &end); err != nil || end <= ev.Transaction.CommitLSN {
		t.Errorf("END id %s: want %d:<end LSN, after the commit at %d> (%v)", got[1].ID, ev.Source.TxID, uint64(ev.Transaction.CommitLSN), err)
	}
	ts := got[0].TsMs
	want := []serde.TransactionRecord{
		{Status: serde.TransactionBegin, ID: got[0].ID, TsMs: ts},
		{Status: serde.TransactionEnd, ID: got[1].ID, TsMs: ts, EventCount: 3, DataCollections: []serde.DataCollectionCount{
			{DataCollection: "public." + f.name, EventCount: 2}, {DataCollection: "public." + other, EventCount: 1}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("transaction records:\ngot  %+v\nwant %+v", got, want)
	}
}

// TestReplicationOriginInSource: a transaction with a replication origin (as
// PostgreSQL's logical replication replays one) carries the origin's name
// and its commit LSN there in source.origin and source.origin_lsn, as
// Debezium 3.x fills them from pgoutput's Origin message; others carry null.
func TestReplicationOriginInSource(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	origin := f.name + "_origin"
	f.exec("SELECT pg_replication_origin_create($1)", origin)
	t.Cleanup(func() { f.db.Exec(context.Background(), "SELECT pg_replication_origin_drop($1)", origin) })
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	f.exec("SELECT pg_replication_origin_session_setup($1)", origin)
	tx, err := f.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())", "INSERT INTO " + f.name + " VALUES (2)"} {
		if _, err := tx.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.exec("SELECT pg_replication_origin_session_reset()")

	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 2)
	for _, r := range recs {
		s := r.event.Source
		want := map[int32][2]any{1: {"", change.LSN(0)}, 2: {origin, change.LSN(0xABCDEF)}}[r.event.After["id"].(int32)]
		if s.Origin != want[0] || s.OriginLSN != want[1] {
			t.Errorf("row %v: source.origin %q, origin_lsn %s; want %q, %v", r.event.After["id"], s.Origin, s.OriginLSN, want[0], want[1])
		}
	}
}

// isolatedDatabase creates a database for the test alone, dropped when it
// ends, and returns its DSN.
func isolatedDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.PGDSN(t)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("iso_%d_%d", time.Now().Unix(), rand.IntN(1_000_000))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(ctx)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("CDCFLOW_PG_DSN must be a URL to derive a second database's: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// walRetained reports how far the slot's restart and confirmed positions
// trail the current WAL position, in bytes.
func (f *fixture) walRetained() (restart, confirmed int64) {
	f.t.Helper()
	err := f.db.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8,
		pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1`, f.name).Scan(&restart, &confirmed)
	if err != nil {
		f.t.Fatal(err)
	}
	return restart, confirmed
}

// TestIdleSlotHeartbeats writes about 50 MB of WAL to a table capture does
// not capture and checks that heartbeats keep the slot's retained WAL
// bounded, and that without them it is not.
//
// Each case runs in a database of its own: logical decoding reads one
// database's WAL, so the heartbeats of captures other tests run meanwhile
// (transactional messages every slot of their database decodes) do not move
// this slot.
func TestIdleSlotHeartbeats(t *testing.T) {
	for _, tc := range []struct {
		name      string
		heartbeat time.Duration
	}{{"heartbeats", 300 * time.Millisecond}, {"no heartbeats", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureIn(t, isolatedDatabase(t))
			busy := f.name + "_busy"
			f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
			f.exec(fmt.Sprintf("CREATE TABLE %s (id int, pad text)", busy))
			t.Cleanup(func() {
				f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+busy)
			})
			f.start(capture.Config{HeartbeatInterval: tc.heartbeat})
			start := f.walLSN()
			for i := 0; i < 10; i++ {
				f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 5000) g", busy))
			}
			written := int64(f.walLSN() - start)
			time.Sleep(2 * time.Second)
			f.exec("CHECKPOINT") // logs the running transactions the slot's restart position moves to
			time.Sleep(2 * time.Second)
			restart, confirmed := f.walRetained()
			t.Logf("wrote %.1f MB of WAL elsewhere; slot retains %.1f MB (restart_lsn), confirmed_flush trails by %.1f MB",
				float64(written)/1e6, float64(restart)/1e6, float64(confirmed)/1e6)
			if written < 40e6 {
				t.Fatalf("the workload wrote only %d bytes of WAL", written)
			}
			if tc.heartbeat > 0 && (restart > 4e6 || confirmed > 1e6) {
				t.Errorf("with heartbeats the slot retains %d bytes (restart) and trails %d (confirmed)", restart, confirmed)
			}
			if tc.heartbeat < 0 && restart < written {
				t.Errorf("without heartbeats the slot retains only %d of %d bytes: the test does not show what heartbeats fix", restart, written)
			}
		})
	}
}

func TestLogicalDecodingMessages(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.start(capture.Config{MessagePrefixes: []string{"outbox"}})
	tx, err := f.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"INSERT INTO " + f.name + " VALUES (1)",
		"SELECT pg_logical_emit_message(true, 'outbox', '{\"type\":\"OrderCreated\",\"id\":1}')",
		"SELECT pg_logical_emit_message(true, 'other', 'not selected')",
	} {
		if _, err := tx.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.exec("SELECT pg_logical_emit_message(false, 'outbox', 'right away')")
	ins := f.consume(serde.Topic(f.prefix, "public", f.name), 1)[0].event

	dec := serde.NewDecoder(f.reg)
	var got []*serde.Message
	for _, r := range f.rawRecords(serde.MessageTopic(f.prefix), 2) {
		m, err := dec.DecodeMessage(context.Background(), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("%d messages, want 2", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Position.Compare(got[j].Position) < 0 })
	if m := got[0]; m.Prefix != "outbox" || string(m.Content) != `{"type":"OrderCreated","id":1}` || m.Transaction == nil ||
		m.Source.TxID != ins.Source.TxID || m.Transaction.ID != fmt.Sprintf("%d:%d", m.Source.TxID, uint64(m.Source.LSN)) ||
		m.Transaction.CommitLSN != ins.Transaction.CommitLSN || m.Position != (change.Position{CommitLSN: ins.Position.CommitLSN, Index: 2}) {
		t.Errorf("transactional message: %+v (transaction %+v), want the outbox message after the insert %v", m, m.Transaction, ins.Position)
	}
	if m := got[1]; m.Prefix != "outbox" || string(m.Content) != "right away" || m.Transaction != nil || m.Position.Compare(ins.Position) <= 0 {
		t.Errorf("non-transactional message: %+v", m)
	}
}

// TestPoisonRowsGoToTheDeadLetterTopic: a NaN in a NOT NULL numeric column
// has no Avro form, not even Debezium's null, so its change goes to the
// dead-letter topic and capture goes on; in a nullable column it travels as
// null, as Debezium publishes it.
func TestPoisonRowsGoToTheDeadLetterTopic(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, amount numeric(10,2) NOT NULL, ratio numeric)", f.name))
	reg := prometheus.NewRegistry()
	c := f.startCapture(capture.Config{Metrics: reg})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 'NaN', 1)") // no Avro decimal for NaN, and not null
	f.exec("INSERT INTO " + f.name + " VALUES (2, 2.50, 'NaN')")

	good := f.consume(serde.Topic(f.prefix, "public", f.name), 1)
	if got := good[0].event.After; got["id"] != int32(2) || got["ratio"] != nil {
		t.Fatalf("the change after the poison row is %v, want id 2 with ratio null", got)
	}
	recs := f.rawRecords(f.prefix+".dlq", 1)
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	r := recs[0]
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Value, &body); err != nil {
		t.Fatal(err)
	}
	after, _ := body["after"].(map[string]any)
	if after["id"] != "1" || after["amount"] != "NaN" || body["op"] != "c" || body["table"] != f.name {
		t.Errorf("dead letter body %s does not hold the row", r.Value)
	}
	if !strings.Contains(headers["cdcflow.error"], "NaN") || headers["cdcflow.table"] != "public."+f.name ||
		headers["cdcflow.topic"] != serde.Topic(f.prefix, "public", f.name) || headers["cdcflow.lsn"] == "" {
		t.Errorf("headers %v", headers)
	}
	pos, err := change.ParsePosition(headers["cdcflow.position"])
	if err != nil || pos.Compare(good[0].event.Position) >= 0 {
		t.Errorf("dead letter position %v (%v) is not before the next change %v", pos, err, good[0].event.Position)
	}
	if st := c.Stats(); st.DeadLettered != 1 {
		t.Errorf("stats %+v, want one dead letter", st)
	}
	table := "public." + f.name
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"cdcflow_capture_dead_letters_total", map[string]string{"table": table}, func(v float64) bool { return v == 1 }},
		{"cdcflow_capture_events_total", map[string]string{"table": table, "op": "c"}, func(v float64) bool { return v == 1 }},
		{"cdcflow_capture_kafka_transactions_total", nil, func(v float64) bool { return v >= 1 }},
		{"cdcflow_capture_server_wal_lsn", nil, func(v float64) bool { return v > 0 }},
	} {
		if v, ok := metricValue(t, reg, m.name, m.labels); !ok || !m.want(v) {
			t.Errorf("metric %s%v = %v (found %v)", m.name, m.labels, v, ok)
		}
	}
}

// metricValue reads one counter or gauge from a registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	metrics:
		for _, m := range fam.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// holdSlot starts replication from the fixture's slot on a connection of its
// own, as a capture killed a moment ago whose walsender PostgreSQL has not
// yet ended; release closes it.
func (f *fixture) holdSlot() (release func()) {
	f.t.Helper()
	f.waitSlotReleased() // from the capture the test stopped
	ctx := context.Background()
	cfg, err := pgconn.ParseConfig(f.dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	err = pglogrepl.StartReplication(ctx, conn, f.name, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + f.name + "'"},
	})
	if err != nil {
		f.t.Fatalf("hold slot %s: %v", f.name, err)
	}
	return func() { conn.Close(ctx) }
}

func TestBusySlotIsWaitedFor(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	stop := f.start(capture.Config{})
	stop()

	// Held for a moment: capture waits, then streams once the holder lets go.
	release := f.holdSlot()
	c, _ := f.run(capture.Config{SlotBusyTimeout: 30 * time.Second}, false)
	select {
	case <-c.Streaming():
		t.Fatal("capture streamed from a slot another connection holds")
	case <-time.After(2 * time.Second):
	}
	release()
	select {
	case <-c.Streaming():
	case <-time.After(15 * time.Second):
		t.Fatal("capture did not stream within 15s of the slot's release")
	}
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	if recs := f.consume(serde.Topic(f.prefix, "public", f.name), 1); recs[0].event.After["id"] != int32(1) {
		t.Fatalf("after the wait: %+v", recs[0].event)
	}
}

func TestBusySlotTimesOutWithTheFix(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	stop := f.start(capture.Config{})
	stop()
	release := f.holdSlot()
	defer release()
	cfg := capture.Config{DSN: f.dsn, Brokers: f.brokers, Tables: []string{"public." + f.name},
		TopicPrefix: f.prefix, Slot: f.name, Publication: f.name, SlotBusyTimeout: 1500 * time.Millisecond}
	enc := f.enc
	if enc == nil {
		enc = serde.NewEncoder(f.reg, f.prefix)
	}
	c, err := capture.New(cfg, enc)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = c.Run(context.Background())
	if err == nil {
		t.Fatal("capture ran on a slot another connection holds")
	}
	msg := err.Error()
	for _, want := range []string{"replication slot " + f.name + " is still in use after 1.5s", "pg_terminate_backend"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if took := time.Since(begin); took < 1500*time.Millisecond {
		t.Errorf("gave up after %v, before the 1.5s timeout", took)
	}
}
