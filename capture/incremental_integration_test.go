package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/pgtemp"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// signalTable names the fixture's signalling table, dropped when the test
// ends; capture creates it.
func (f *fixture) signalTable() string {
	name := f.name + "_signal"
	f.t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+name) })
	return "public." + name
}

// signal inserts a signal into the signalling table, as a user would.
func (f *fixture) signal(table, typ, data string) {
	f.t.Helper()
	f.exec("INSERT INTO "+table+" (id, type, data) VALUES ($1, $2, $3)", fmt.Sprintf("%s-%d", typ, rand.Int64()), typ, data)
}

// versionedTable creates the fixture's table of rows (id, version, pad)
// with ids 1..rows, at version 1.
func (f *fixture) versionedTable(rows int) {
	f.t.Helper()
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, version int NOT NULL, pad text NOT NULL)", f.name))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, 1, 'row ' || g FROM generate_series(1, %d) g", f.name, rows))
	f.exec("ANALYZE " + f.name)
}

// writer changes the fixture's versioned table until stop is called (see
// testenv.ChangeVersioned), ids up to twice those it started with.
func (f *fixture) writer(rows int) (stop func() int) {
	f.t.Helper()
	return testenv.ChangeVersioned(f.t, f.dsn, f.name, 2*rows)
}

// versionedRow is a row of the versioned table.
type versionedRow struct {
	version int32
	pad     string
}

// tableContents reads the fixture's versioned table.
func (f *fixture) tableContents() map[int32]versionedRow {
	f.t.Helper()
	rows, err := f.db.Query(context.Background(), "SELECT id, version, pad FROM "+f.name)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]versionedRow{}
	for rows.Next() {
		var id, v int32
		var pad string
		if err := rows.Scan(&id, &v, &pad); err != nil {
			f.t.Fatal(err)
		}
		out[id] = versionedRow{v, pad}
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// caughtUp inserts a row with id 0 after everything else was written and
// reads the table's topic until it arrived, then up to the end of every
// partition: all of the table's changes.
func (f *fixture) caughtUp(timeout time.Duration) []record {
	f.t.Helper()
	f.exec("INSERT INTO " + f.name + " VALUES (0, 0, 'caught up')")
	dec := serde.NewDecoder(f.reg)
	ctx := context.Background()
	raw := testenv.ReadCommitted(f.t, f.brokers, serde.Topic(f.prefix, "public", f.name), timeout, func(r *kgo.Record) bool {
		key, err := dec.DecodeKey(ctx, r.Key)
		return err == nil && key["id"] == int32(0) && r.Value != nil
	})
	out := make([]record, len(raw))
	for i, r := range raw {
		key, err := dec.DecodeKey(ctx, r.Key)
		if err != nil {
			f.t.Fatal(err)
		}
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			f.t.Fatal(err)
		}
		out[i] = record{key: key, event: ev}
	}
	return out
}

// lastValues keeps, per key, the last value a record gave it, as a
// consumer keeping the last value per key does: nil after a delete or a
// tombstone. It also counts the reads of incremental snapshots of each key.
func lastValues(t *testing.T, recs []record) (rows map[int32]*versionedRow, reads map[int32]int) {
	t.Helper()
	rows, reads = map[int32]*versionedRow{}, map[int32]int{}
	for _, r := range recs {
		id := r.key["id"].(int32)
		ev := r.event
		if ev == nil || ev.Op == change.OpDelete {
			rows[id] = nil
			continue
		}
		if ev.Op == change.OpRead && ev.Source.Snapshot == change.SnapshotIncremental {
			if len(ev.Before) != 0 || ev.Transaction != nil {
				t.Errorf("read of id %d: before %v, transaction %v; want neither", id, ev.Before, ev.Transaction)
			}
			reads[id]++
		}
		rows[id] = &versionedRow{ev.After["version"].(int32), ev.After["pad"].(string)}
	}
	return rows, reads
}

// sameContents checks, row by row, that the last values equal the table.
func sameContents(t *testing.T, got map[int32]*versionedRow, want map[int32]versionedRow) {
	t.Helper()
	problems := 0
	problem := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for id, w := range want {
		g := got[id]
		switch {
		case g == nil:
			problem("row %d (version %d, %q) is in the table, not in Kafka", id, w.version, w.pad)
		case *g != w:
			problem("row %d: Kafka has version %d, %q; the table %d, %q", id, g.version, g.pad, w.version, w.pad)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok && g != nil {
			problem("row %d (version %d, %q) is in Kafka, not in the table", id, g.version, g.pad)
		}
	}
	if problems > 20 {
		t.Errorf("... and %d more", problems-20)
	}
}

// logHistories logs every record of the first keys whose last value is
// not the table's.
func logHistories(t *testing.T, recs []record, got map[int32]*versionedRow, want map[int32]versionedRow) {
	n := 0
	for id, w := range want {
		if g := got[id]; g != nil && *g == w {
			continue
		}
		if n++; n > 5 {
			return
		}
		for _, r := range recs {
			if r.key["id"] != id {
				continue
			}
			if ev := r.event; ev == nil {
				t.Logf("row %d: tombstone", id)
			} else {
				t.Logf("row %d: %s %s at %s (lsn %s, txid %d): %v", id, ev.Op, ev.Source.Snapshot, ev.Position, ev.Source.LSN, ev.Source.TxID, ev.After)
			}
		}
	}
}

// waitIncremental waits until c has no incremental snapshot to do and
// returns what it reports.
func waitIncremental(t *testing.T, c *capture.Capture, timeout time.Duration) []capture.IncrementalProgress {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := c.IncrementalSnapshots()
		if len(p) > 0 && !slices.ContainsFunc(p, func(p capture.IncrementalProgress) bool { return !p.Done && !p.Stopped }) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("incremental snapshots not done within %v: %+v", timeout, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIncrementalSnapshotUnderWrites reads a table of 30,000 rows with an
// incremental snapshot started by a row inserted into the signalling table,
// while a writer updates, deletes and inserts rows of it all along: a
// consumer that keeps the last value per key ends with exactly the table's
// rows, no key is read twice, and progress is reported.
func TestIncrementalSnapshotUnderWrites(t *testing.T) {
	f := newFixture(t)
	const rows = 30_000
	f.versionedTable(rows)
	signals := f.signalTable()
	reg := prometheus.NewRegistry()
	c := f.startCapture(capture.Config{Snapshot: capture.SnapshotNoData, SignalTable: signals, IncrementalChunkRows: 500, Metrics: reg})
	stop := f.writer(rows)
	time.Sleep(500 * time.Millisecond) // the writer is at it before the snapshot starts
	f.signal(signals, "execute-snapshot", `{"data-collections": ["public.`+f.name+`"], "type": "incremental"}`)
	begin := time.Now()
	progress := waitIncremental(t, c, 5*time.Minute)
	took := time.Since(begin)
	txs := stop()
	recs := f.caughtUp(2 * time.Minute)

	got, reads := lastValues(t, recs)
	want := f.tableContents()
	sameContents(t, got, want)
	total := 0
	for id, n := range reads {
		total += n
		if n > 1 {
			t.Errorf("row %d read %d times", id, n)
		}
	}
	if total < rows/2 {
		t.Errorf("%d reads of %d rows", total, rows)
	}
	if len(progress) != 1 || !progress[0].Done || progress[0].Rows != int64(total) || progress[0].Table != "public."+f.name ||
		!strings.HasPrefix(progress[0].Reason, "signal ") {
		t.Errorf("IncrementalSnapshots() = %+v, want one table done with %d rows, by a signal", progress, total)
	}
	if v, _ := metricValue(t, reg, "cdcflow_capture_incremental_snapshot_rows_total", map[string]string{"table": "public." + f.name}); v != float64(total) {
		t.Errorf("cdcflow_capture_incremental_snapshot_rows_total = %v, want %d", v, total)
	}
	if v, _ := metricValue(t, reg, "cdcflow_capture_signals_total", map[string]string{"type": "execute-snapshot", "result": "applied"}); v != 1 {
		t.Errorf("cdcflow_capture_signals_total{execute-snapshot,applied} = %v, want 1", v)
	}
	t.Logf("%d rows read in %v while the writer committed %d transactions (%d rows in the table at the end, %d records)",
		total, took.Round(time.Millisecond), txs, len(want), len(recs))
}

// TestIncrementalSnapshotSignalMethodAndFilter starts an incremental
// snapshot with Capture.Signal and an additional condition: only the rows
// that satisfy it are read.
func TestIncrementalSnapshotSignalMethodAndFilter(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, status text NOT NULL)", f.name))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, CASE WHEN g %% 3 = 0 THEN 'paid' ELSE 'new' END FROM generate_series(1, 3000) g", f.name))
	c := f.startCapture(capture.Config{Snapshot: capture.SnapshotNoData, SignalTable: f.signalTable(), IncrementalChunkRows: 128})
	err := c.Signal(context.Background(), "execute-snapshot", fmt.Sprintf(`{"data-collections": ["public.%s"], "type": "incremental",
		"additional-conditions": [{"data-collection": "public.%s", "filter": "status = 'paid'"}]}`, f.name, f.name))
	if err != nil {
		t.Fatal(err)
	}
	progress := waitIncremental(t, c, 2*time.Minute)
	if len(progress) != 1 || progress[0].Filter != "status = 'paid'" || progress[0].Rows != 1000 {
		t.Errorf("IncrementalSnapshots() = %+v, want one table done with the filter and 1000 rows", progress)
	}
	recs := f.consumeAtLeast(serde.Topic(f.prefix, "public", f.name), 1000, 60*time.Second, 2*time.Second)
	ids := map[int32]bool{}
	for _, r := range recs {
		ev := r.event
		id := ev.After["id"].(int32)
		if ev.Op != change.OpRead || ev.After["status"] != "paid" || id%3 != 0 || ids[id] {
			t.Errorf("record %+v: want one read of each paid row", ev)
		}
		ids[id] = true
	}
	if len(ids) != 1000 {
		t.Errorf("%d rows read, want the 1000 paid ones", len(ids))
	}
	// Signal checks what it sends.
	for _, tc := range []struct{ typ, data, want string }{
		{"frobnicate", "{}", `unknown signal type "frobnicate"`},
		{"execute-snapshot", `{"data-collections": []}`, "names no data-collections"},
		{"execute-snapshot", `{"data-collections": ["public.x"], "type": "blocking"}`, "only incremental snapshots"},
		{"execute-snapshot", `{"data-collections": "public.x"}`, "signal data is not"},
	} {
		if err := c.Signal(context.Background(), tc.typ, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Signal(%q, %q) = %v, want an error saying %q", tc.typ, tc.data, err, tc.want)
		}
	}
}

// TestStopSnapshot stops an incremental snapshot part way with a
// stop-snapshot signal: it is reported stopped and reads no more rows.
func TestStopSnapshot(t *testing.T) {
	f := newFixture(t)
	const rows = 200_000
	f.versionedTable(rows)
	signals := f.signalTable()
	c := f.startCapture(capture.Config{Snapshot: capture.SnapshotNoData, SignalTable: signals, IncrementalChunkRows: 100})
	f.signal(signals, "execute-snapshot", `{"data-collections": ["public.`+f.name+`"]}`)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if p := c.IncrementalSnapshots(); len(p) == 1 && p[0].Rows >= 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 1000 rows read within 2 minutes: %+v", c.IncrementalSnapshots())
		}
	}
	f.signal(signals, "stop-snapshot", `{"type": "incremental"}`) // no data-collections: all
	progress := waitIncremental(t, c, time.Minute)
	if len(progress) != 1 || !progress[0].Stopped || progress[0].Done || progress[0].Rows >= rows {
		t.Fatalf("IncrementalSnapshots() = %+v, want the table stopped part way", progress)
	}
	recs := f.caughtUp(time.Minute)
	_, reads := lastValues(t, recs)
	if int64(len(reads)) != progress[0].Rows {
		t.Errorf("%d rows read, progress says %d", len(reads), progress[0].Rows)
	}
	t.Logf("stopped after %d of %d rows", len(reads), rows)
}

// TestBadSignalsAreIgnored: signals capture cannot act on are logged,
// counted and ignored; capture goes on streaming.
func TestBadSignalsAreIgnored(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, status text NOT NULL)", f.name))
	f.exec("INSERT INTO " + f.name + " VALUES (1, 'new')")
	signals := f.signalTable()
	reg := prometheus.NewRegistry()
	c := f.startCapture(capture.Config{Snapshot: capture.SnapshotNoData, SignalTable: signals, Metrics: reg})
	f.signal(signals, "frobnicate", `{}`)
	f.signal(signals, "execute-snapshot", `{"data-collections": `)
	f.signal(signals, "execute-snapshot", `{"data-collections": ["public.not_captured"]}`)
	f.signal(signals, "log", `{"message": "hello from a test"}`)
	f.signal(signals, "execute-snapshot", `{"data-collections": ["public.`+f.name+`"],
		"additional-conditions": [{"data-collection": "public.`+f.name+`", "filter": "status = "}]}`)
	progress := waitIncremental(t, c, time.Minute)
	if len(progress) != 1 || !progress[0].Stopped || progress[0].Rows != 0 {
		t.Errorf("IncrementalSnapshots() = %+v, want the table with the broken filter abandoned", progress)
	}
	f.exec("INSERT INTO " + f.name + " VALUES (2, 'new')")
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 1)
	if ev := recs[0].event; ev.Op != change.OpCreate || ev.After["id"] != int32(2) {
		t.Errorf("after the bad signals: %+v, want the insert of row 2", ev)
	}
	for _, m := range []struct {
		typ, result string
		want        float64
	}{{"unknown", "ignored", 1}, {"execute-snapshot", "ignored", 2}, {"log", "applied", 1}, {"execute-snapshot", "applied", 1}} {
		if v, _ := metricValue(t, reg, "cdcflow_capture_signals_total", map[string]string{"type": m.typ, "result": m.result}); v != m.want {
			t.Errorf("cdcflow_capture_signals_total{%s,%s} = %v, want %v", m.typ, m.result, v, m.want)
		}
	}
}

// supervise runs captures with cfg one after the other, as a supervisor
// restarting a failed process would, until stop is called: each error is
// logged and counted.
func (f *fixture) supervise(cfg capture.Config) (current func() *capture.Capture, failures *atomic.Int64, stop func()) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var c *capture.Capture
	failures = &atomic.Int64{}
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for ctx.Err() == nil {
			next, _ := f.newCapture(cfg)
			mu.Lock()
			c = next
			mu.Unlock()
			if first {
				close(started)
				first = false
			}
			err := next.Run(ctx)
			if err != nil && ctx.Err() == nil {
				failures.Add(1)
				f.t.Logf("capture failed, restarting it: %v", err)
				time.Sleep(500 * time.Millisecond)
			}
		}
	}()
	<-started
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	f.t.Cleanup(stop)
	return func() *capture.Capture { mu.Lock(); defer mu.Unlock(); return c }, failures, stop
}

// newCapture builds a capture of the fixture with cfg.
func (f *fixture) newCapture(cfg capture.Config) (*capture.Capture, error) {
	cfg.DSN, cfg.TopicPrefix, cfg.Slot, cfg.Publication = f.dsn, f.prefix, f.name, f.name
	if cfg.Tables == nil {
		cfg.Tables = []string{"public." + f.name}
	}
	cfg.StatusInterval = 200 * time.Millisecond
	cfg.Brokers = f.brokers
	c, err := capture.New(cfg, serde.NewEncoder(f.reg, f.prefix))
	if err != nil {
		f.t.Fatal(err)
	}
	return c, nil
}

// dropSlotNow ends the walsender that holds the fixture's slot and drops
// the slot, as an operator would, while capture streams from it.
func (f *fixture) dropSlotNow() {
	f.t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		f.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", f.name)
		_, err := f.db.Exec(ctx, "SELECT pg_drop_replication_slot($1)", f.name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("drop slot %s: %v", f.name, err)
		}
	}
}

// TestSlotDroppedUnderLoadLosesNothing drops the slot while capture streams
// a table a writer keeps changing. In snapshot mode when_needed capture
// creates a new slot, publishes the deletes made meanwhile and reads the
// table again with an incremental snapshot while it streams: a consumer
// keeping the last value per key ends with exactly the table's rows.
//
// A transaction held open across the drop makes the new slot wait for it
// (PostgreSQL starts a logical slot once the transactions running when it
// was asked for have ended): the writer's changes of those seconds are in
// no slot. The test checks the gap was there and that the recovery, not
// the stream, delivered it: deletes found by comparing keys, and rows read
// again with a value no streamed change carried.
func TestSlotDroppedUnderLoadLosesNothing(t *testing.T) {
	f := newFixture(t)
	const rows = 20_000
	f.versionedTable(rows)
	current, failures, stop := f.supervise(capture.Config{Snapshot: capture.SnapshotWhenNeeded, IncrementalChunkRows: 500})
	select {
	case <-current().Streaming():
	case <-time.After(2 * time.Minute):
		t.Fatal("capture did not stream within 2 minutes")
	}
	stopWriter := f.writer(rows)
	time.Sleep(2 * time.Second)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	hold, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil { // a transaction id: the new slot waits for it
		t.Fatal(err)
	}
	f.dropSlotNow()
	time.Sleep(3 * time.Second) // the writer's changes of these seconds are in no slot
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for the new slot, then for the re-snapshot to end.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if p := current().IncrementalSnapshots(); len(p) > 0 && p[0].Reason == "slot lost" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 2 minutes: %+v", current().IncrementalSnapshots())
		}
	}
	time.Sleep(time.Second) // writes while the table is read again
	progress := waitIncremental(t, current(), 5*time.Minute)
	txs := stopWriter()
	recs := f.caughtUp(2 * time.Minute)
	stop()

	got, reads := lastValues(t, recs)
	sameContents(t, got, f.tableContents())
	if t.Failed() {
		logHistories(t, recs, got, f.tableContents())
	}
	deletes, unstreamed := gapFound(recs)
	if len(progress) != 1 || progress[0].Reason != "slot lost" || !progress[0].Done || len(reads) == 0 {
		t.Errorf("IncrementalSnapshots() = %+v with %d rows read, want the table read again after the loss", progress, len(reads))
	}
	if deletes == 0 || unstreamed == 0 {
		t.Errorf("the recovery published %d deletes and read %d rows with a value no streamed change carried: want some of each, the changes made while no slot recorded them", deletes, unstreamed)
	}
	t.Logf("writer committed %d transactions; capture failed %d times; after the loss %d deletes found by comparing keys, %d rows read again, %d of them with a value only the re-snapshot carried",
		txs, failures.Load(), deletes, len(reads), unstreamed)
}

// gapFound counts what only the recovery from a lost slot delivered: the
// deletes it published (found by comparing keys), and the rows its
// incremental snapshot read with a value that no other record of the row
// carried (changed while no slot recorded it).
func gapFound(recs []record) (deletes, unstreamed int) {
	type value struct {
		id      int32
		version int32
		pad     string
	}
	seen := map[value]bool{}
	for _, r := range recs {
		if ev := r.event; ev != nil && ev.After != nil && ev.Source.Snapshot != change.SnapshotIncremental {
			seen[value{r.key["id"].(int32), ev.After["version"].(int32), ev.After["pad"].(string)}] = true
		}
	}
	for _, r := range recs {
		ev := r.event
		if ev == nil || ev.Source.Snapshot != change.SnapshotIncremental {
			continue
		}
		switch ev.Op {
		case change.OpDelete:
			deletes++
		case change.OpRead:
			if !seen[value{r.key["id"].(int32), ev.After["version"].(int32), ev.After["pad"].(string)}] {
				unstreamed++
			}
		}
	}
	return deletes, unstreamed
}

// TestLostSlot drops the slot while capture is down and changes the table
// meanwhile: by default capture stops with an error that names the problem
// and the fix; in snapshot mode when_needed it publishes the delete the
// new slot cannot show and reads every row again.
func TestLostSlot(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, version int NOT NULL, pad text NOT NULL)", f.name))
	f.exec("INSERT INTO " + f.name + " SELECT g, 1, 'row' FROM generate_series(1, 5) g")
	stop := f.start(capture.Config{})
	f.consume(serde.Topic(f.prefix, "public", f.name), 5)
	stop()
	f.dropSlot()
	f.exec("DELETE FROM " + f.name + " WHERE id = 2")                // no slot records these
	f.exec("UPDATE " + f.name + " SET version = 2 WHERE id = 3")     //
	f.exec("INSERT INTO " + f.name + " VALUES (6, 1, 'while lost')") //

	c, _ := f.newCapture(capture.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Run(ctx)
	if !errors.Is(err, capture.ErrSlotLost) {
		t.Fatalf("Run = %v, want ErrSlotLost", err)
	}
	for _, want := range []string{"replication slot " + f.name, "no longer exists", "when_needed", "another slot name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	c = f.startCapture(capture.Config{Snapshot: capture.SnapshotWhenNeeded})
	waitIncremental(t, c, time.Minute)
	recs := f.caughtUp(time.Minute)
	got, reads := lastValues(t, recs)
	sameContents(t, got, f.tableContents())
	var deleted []int32
	for _, r := range recs {
		if ev := r.event; ev != nil && ev.Op == change.OpDelete {
			if ev.Source.Snapshot != change.SnapshotIncremental || ev.Before["id"] != int32(2) {
				t.Errorf("delete %+v, want the incremental delete of row 2", ev)
			}
			deleted = append(deleted, ev.Before["id"].(int32))
		}
	}
	if !slices.Equal(deleted, []int32{2}) || len(reads) != 5 {
		t.Errorf("deleted %v and read %d rows again, want row 2 deleted and rows 1, 3, 4, 5, 6 read", deleted, len(reads))
	}
}

// TestInterruptedRecoveryStartsOver: a checkpoint that says a recovery from
// the loss of the slot was under way (capture stopped between recording
// the loss and planning the new snapshot) makes the next start recover
// again, even though a slot exists by then: it may be the new slot, which
// does not hold the changes made before it.
func TestInterruptedRecoveryStartsOver(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, version int NOT NULL, pad text NOT NULL)", f.name))
	f.exec("INSERT INTO " + f.name + " SELECT g, 1, 'row' FROM generate_series(1, 3) g")
	stop := f.start(capture.Config{})
	f.consume(serde.Topic(f.prefix, "public", f.name), 3)
	stop()
	ctx := context.Background()
	ckpt, found, err := capture.ReadCheckpoint(ctx, f.brokers, "cdcflow.checkpoints", f.prefix, f.name)
	if err != nil || !found {
		t.Fatalf("checkpoint: %v (found %v)", err, found)
	}
	ckpt.SlotLost = &capture.SlotLoss{Reason: "it no longer exists", Confirmed: ckpt.Confirm, Found: time.Now()}
	value, err := json.Marshal(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cdcflow.checkpoints", Key: []byte(f.prefix + "/" + f.name), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	f.exec("DELETE FROM " + f.name + " WHERE id = 1") // streamed by the slot, which is dropped and created again

	c, _ := f.newCapture(capture.Config{})
	err = c.Run(ctx)
	if !errors.Is(err, capture.ErrSlotLost) || !strings.Contains(err.Error(), "recovering from its loss") {
		t.Fatalf("Run = %v, want ErrSlotLost saying capture was recovering", err)
	}
	c = f.startCapture(capture.Config{Snapshot: capture.SnapshotWhenNeeded})
	if p := waitIncremental(t, c, time.Minute); len(p) != 1 || p[0].Reason != "slot lost" {
		t.Fatalf("IncrementalSnapshots() = %+v, want the table read again after the loss", p)
	}
	recs := f.caughtUp(time.Minute)
	got, _ := lastValues(t, recs)
	sameContents(t, got, f.tableContents())
	ckpt, _, err = capture.ReadCheckpoint(ctx, f.brokers, "cdcflow.checkpoints", f.prefix, f.name)
	if err != nil || ckpt.SlotLost != nil || ckpt.Incremental != nil {
		t.Errorf("checkpoint after the recovery: %+v (%v), want neither a loss nor a snapshot pending", ckpt, err)
	}
}

// TestSlotInvalidatedWhileStreaming runs capture against a throwaway
// cluster of its own with max_slot_wal_keep_size = 1MB (a setting no test
// may give the shared server). Capture is stalled by a registry outage in
// the middle of changes, 60 MB of WAL is written and a checkpoint taken:
// PostgreSQL invalidates the slot (wal_status lost) and ends its
// walsender. Capture, in snapshot mode when_needed, recovers within the
// same Run (Run returns no error): a new slot, the delete made meanwhile,
// the rows read again; the topic ends equal to the table.
func TestSlotInvalidatedWhileStreaming(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	bin, err := pgtemp.FindBin()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := pgtemp.Start(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	f := newFixtureIn(t, cluster.DSN())
	proxy := registryBehindProxy(f)
	f.exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
	f.exec("SELECT pg_reload_conf()")
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, version int NOT NULL, pad text NOT NULL)", f.name))
	f.exec("INSERT INTO " + f.name + " SELECT g, 1, 'row' FROM generate_series(1, 100) g")
	f.exec("CREATE TABLE wal_filler (pad text)")
	c := f.startCapture(capture.Config{Snapshot: capture.SnapshotWhenNeeded})
	f.consume(serde.Topic(f.prefix, "public", f.name), 100)

	// A schema the registry must register, while it cannot be reached:
	// capture waits, and confirms nothing more.
	proxy.Block()
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN note text")
	f.exec("UPDATE " + f.name + " SET version = 2 WHERE id <= 10")
	f.exec("DELETE FROM " + f.name + " WHERE id = 11")
	for i := 0; i < 3; i++ {
		f.exec("INSERT INTO wal_filler SELECT repeat('x', 1000) FROM generate_series(1, 20000)")
		f.exec("SELECT pg_switch_wal()")
	}
	f.exec("CHECKPOINT")
	var status string
	if err := f.db.QueryRow(ctx, "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1", f.name).Scan(&status); err == nil {
		t.Logf("slot after the checkpoint: wal_status %s", status)
	}
	// The loss is committed to the checkpoint before capture needs the
	// registry again.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ckpt, _, err := capture.ReadCheckpoint(ctx, f.brokers, "cdcflow.checkpoints", f.prefix, f.name)
		if err != nil {
			t.Fatal(err)
		}
		if ckpt.SlotLost != nil {
			t.Logf("capture recovers: %s", ckpt.SlotLost.Reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("capture did not record the loss of its slot within 2 minutes")
		}
	}
	proxy.Unblock()
	if p := waitIncremental(t, c, 2*time.Minute); len(p) != 1 || p[0].Reason != "slot lost" {
		t.Fatalf("IncrementalSnapshots() = %+v, want the table read again after the loss", p)
	}
	recs := f.caughtUp(time.Minute)
	got, reads := lastValues(t, recs)
	sameContents(t, got, f.tableContents())
	if len(reads) != 99 {
		t.Errorf("%d rows read again, want the 99 left", len(reads))
	}
}

// TestSlotFailover asks for a failover slot. From PostgreSQL 17 capture
// creates one (pg_replication_slots.failover); before, it warns that
// failover slots need PostgreSQL 17 and streams from an ordinary slot.
func TestSlotFailover(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, status text NOT NULL)", f.name))
	var version int
	if err := f.db.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Output{}
	f.start(capture.Config{SlotFailover: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 'new')")
	if ev := f.consume(serde.Topic(f.prefix, "public", f.name), 1)[0].event; ev.Op != change.OpCreate || ev.After["id"] != int32(1) {
		t.Errorf("streamed %+v, want the insert of row 1", ev)
	}
	warned := strings.Contains(logs.String(), "failover slots need PostgreSQL 17")
	if version < 170000 {
		if !warned {
			t.Errorf("PostgreSQL %d: no warning that failover slots need PostgreSQL 17 in the log:\n%s", version, logs)
		}
		t.Logf("PostgreSQL %d: capture warned and streams from an ordinary slot", version)
		return
	}
	var failover bool
	if err := f.db.QueryRow(context.Background(), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", f.name).Scan(&failover); err != nil {
		t.Fatal(err)
	}
	if !failover || warned {
		t.Errorf("PostgreSQL %d: slot failover %v, warned %v; want a failover slot and no warning", version, failover, warned)
	}
}
