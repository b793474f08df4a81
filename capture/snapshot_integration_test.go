package capture_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// TestSnapshotThenStream snapshots a table of 120,000 rows in parallel
// key ranges, then streams: every row arrives once as op "r", marked as
// Debezium marks the reads of a one-table snapshot (one "first", one "last",
// the others "true"), and the changes after the snapshot follow.
func TestSnapshotThenStream(t *testing.T) {
	f := newFixture(t)
	const rows = 120_000
	f.exec(fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, v text NOT NULL)", f.name))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, 'row ' || g FROM generate_series(1, %d) g", f.name, rows))
	f.exec("ANALYZE " + f.name)
	var progress struct {
		sync.Mutex
		calls, last, total int64
		backwards          bool
	}
	f.start(capture.Config{SnapshotWorkers: 3, SnapshotChunkRows: 10_000, SnapshotProgress: func(done, total int64) {
		progress.Lock()
		defer progress.Unlock()
		progress.calls++
		progress.backwards = progress.backwards || done < progress.last
		progress.last, progress.total = done, total
	}})
	f.exec("UPDATE " + f.name + " SET v = 'changed' WHERE id = 7")
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, 'new')", f.name, rows+1))

	recs := f.consume(serde.Topic(f.prefix, "public", f.name), rows+2)
	seen := make(map[int64]int, rows)
	markers := map[string]int{}
	var snapshotAt change.Position
	var streamed []*change.Event
	for _, r := range recs {
		ev := r.event
		if ev.Op != change.OpRead {
			streamed = append(streamed, ev)
			continue
		}
		seen[ev.After["id"].(int64)]++
		markers[ev.Source.Snapshot]++
		if ev.Before != nil || ev.After["v"] != fmt.Sprintf("row %d", ev.After["id"]) {
			t.Fatalf("snapshot read %+v", ev)
		}
		snapshotAt = ev.Position
	}
	if want := map[string]int{change.SnapshotFirst: 1, change.SnapshotTrue: rows - 2, change.SnapshotLast: 1}; len(seen) != rows || !maps.Equal(markers, want) {
		t.Fatalf("%d distinct rows read (want %d), source.snapshot markers %v (want %v)", len(seen), rows, markers, want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
	// The progress hook followed the snapshot to its end (a progress bar's
	// view of it).
	progress.Lock()
	if progress.calls < 2 || progress.backwards || progress.last != rows || progress.total != rows {
		t.Errorf("SnapshotProgress: %d calls, ended at %d of %d, went backwards: %v; want many, ending at %d of %d, never backwards",
			progress.calls, progress.last, progress.total, progress.backwards, rows, rows)
	}
	progress.Unlock()
	if len(streamed) != 2 || streamed[0].Op == change.OpRead {
		t.Fatalf("streamed after the snapshot: %d events", len(streamed))
	}
	for _, ev := range streamed {
		if ev.Position.Compare(snapshotAt) <= 0 {
			t.Errorf("change at %s is not after the snapshot at %s", ev.Position, snapshotAt)
		}
	}
}

// TestSnapshotEndingWithAFullTransactionIsDone: when the snapshot's last
// read fills a Kafka transaction exactly, the checkpoint committed at the
// end still records the table's snapshot as finished; a restart does not
// read the table again.
func TestSnapshotEndingWithAFullTransactionIsDone(t *testing.T) {
	f := newFixture(t)
	const rows = 50
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g FROM generate_series(1, %d) g", f.name, rows))
	c := f.capture(capture.Config{Snapshot: capture.SnapshotInitialOnly, TransactionRecords: rows, TransactionTime: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Run(ctx); err != nil { // returns once the snapshot is committed
		t.Fatal(err)
	}
	if got := len(f.consume(serde.Topic(f.prefix, "public", f.name), rows)); got != rows {
		t.Fatalf("%d reads, want %d", got, rows)
	}
	ckpt, found, err := capture.ReadCheckpoint(ctx, f.brokers, "cdcflow.checkpoints", f.prefix, f.name)
	if err != nil || !found {
		t.Fatalf("ReadCheckpoint: found %v, %v", found, err)
	}
	if !ckpt.Snapshot.Complete() || ckpt.Snapshot.Tables["public."+f.name] == 0 {
		t.Fatalf("checkpoint's snapshot %+v, want the table finished", ckpt.Snapshot)
	}
}

// TestInterruptedSnapshotResumes stops capture in the middle of a snapshot
// of two tables, after the first finished: the restart reads only the
// second, and the first's rows are never published twice.
func TestInterruptedSnapshotResumes(t *testing.T) {
	f := newFixture(t)
	small, large := f.name, f.name+"_large"
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", small))
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, pad text)", large))
	t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+large) })
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g FROM generate_series(1, 1000) g", small))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g", large))
	f.exec("ANALYZE " + large)
	cfg := capture.Config{Tables: []string{"public." + small, "public." + large}, SnapshotWorkers: 1, SnapshotChunkRows: 20_000}

	stop := f.startSnapshot(cfg)
	f.consume(serde.Topic(f.prefix, "public", small), 1000) // the small table is done
	stop()                                                  // the large one is not, at 400,000 rows

	// Rows changed while capture is down: in the large table's new snapshot,
	// streamed for the small table.
	f.exec("UPDATE " + large + " SET pad = 'changed' WHERE id = 1")
	f.exec("UPDATE " + small + " SET id = id WHERE id = 1")
	f.start(cfg)
	f.exec("INSERT INTO " + small + " VALUES (1001)")

	smallRecs := f.consume(serde.Topic(f.prefix, "public", small), 1002)
	reads := map[int32]int{}
	markers := map[string]int{}
	for _, r := range smallRecs {
		if r.event.Op == change.OpRead {
			reads[r.event.After["id"].(int32)]++
			markers[r.event.Source.Snapshot]++
		}
	}
	// One worker reads the small table first, as Debezium reads the first
	// of two tables.
	if want := map[string]int{change.SnapshotFirst: 1, change.SnapshotTrue: 998, change.SnapshotLastInTable: 1}; !maps.Equal(markers, want) {
		t.Errorf("small table's source.snapshot markers %v, want %v", markers, want)
	}
	if len(reads) != 1000 {
		t.Fatalf("small table: %d distinct rows read, want 1000", len(reads))
	}
	for id, n := range reads {
		if n != 1 {
			t.Fatalf("small table row %d read %d times: a finished table was read again", id, n)
		}
	}
	largeRecs := f.consumeAtLeast(serde.Topic(f.prefix, "public", large), 400_000, 120*time.Second, 2*time.Second)
	latest := map[int32]string{}
	for _, r := range largeRecs {
		if r.event.Op != change.OpRead {
			t.Fatalf("large table streamed %s: the change before its snapshot must be in the snapshot only", r.event.Op)
		}
		latest[r.event.After["id"].(int32)] = r.event.After["pad"].(string)
	}
	if len(latest) != 400_000 || latest[1] != "changed" {
		t.Fatalf("large table: %d distinct rows, row 1 has %q; want 400000 and the change made while capture was down", len(latest), latest[1])
	}
}
