package capture_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// TestSnapshotThenStream snapshots a table of 120,000 rows in parallel
// key ranges, then streams: every row arrives once as op "r", exactly one
// of them marked last, and the changes after the snapshot follow.
func TestSnapshotThenStream(t *testing.T) {
	f := newFixture(t)
	const rows = 120_000
	f.exec(fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, v text NOT NULL)", f.name))
	f.exec(fmt.Sprintf("INSERT INTO %s SELECT g, 'row ' || g FROM generate_series(1, %d) g", f.name, rows))
	f.exec("ANALYZE " + f.name)
	f.start(capture.Config{SnapshotWorkers: 3, SnapshotChunkRows: 10_000})
	f.exec("UPDATE " + f.name + " SET v = 'changed' WHERE id = 7")
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, 'new')", f.name, rows+1))

	recs := f.consume(serde.Topic(f.prefix, "public", f.name), rows+2)
	seen := make(map[int64]int, rows)
	lasts := 0
	var snapshotAt change.Position
	var streamed []*change.Event
	for _, r := range recs {
		ev := r.event
		if ev.Op != change.OpRead {
			streamed = append(streamed, ev)
			continue
		}
		seen[ev.After["id"].(int64)]++
		if ev.Source.Snapshot == "last" {
			lasts++
		} else if ev.Source.Snapshot != "true" {
			t.Fatalf("snapshot read with source.snapshot %q", ev.Source.Snapshot)
		}
		if ev.Before != nil || ev.After["v"] != fmt.Sprintf("row %d", ev.After["id"]) {
			t.Fatalf("snapshot read %+v", ev)
		}
		snapshotAt = ev.Position
	}
	if len(seen) != rows || lasts != 1 {
		t.Fatalf("%d distinct rows read (want %d), %d marked last (want 1)", len(seen), rows, lasts)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d read %d times", id, n)
		}
	}
	if len(streamed) != 2 || streamed[0].Op == change.OpRead {
		t.Fatalf("streamed after the snapshot: %d events", len(streamed))
	}
	for _, ev := range streamed {
		if ev.Position.Compare(snapshotAt) <= 0 {
			t.Errorf("change at %s is not after the snapshot at %s", ev.Position, snapshotAt)
		}
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
	for _, r := range smallRecs {
		if r.event.Op == change.OpRead {
			reads[r.event.After["id"].(int32)]++
		}
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

// TestWhenNeededSnapshotsAgainAfterTheSlotIsLost drops the slot while
// capture is down: mode when_needed reads the table again, so the row
// written in between is not lost.
func TestWhenNeededSnapshotsAgainAfterTheSlotIsLost(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	cfg := capture.Config{Snapshot: capture.SnapshotWhenNeeded}
	stop := f.start(cfg)
	f.consume(serde.Topic(f.prefix, "public", f.name), 1)
	stop()
	f.dropSlot()
	f.exec("INSERT INTO " + f.name + " VALUES (2)") // no slot holds this change
	f.start(cfg)
	recs := f.consumeAtLeast(serde.Topic(f.prefix, "public", f.name), 3, 60*time.Second, time.Second)
	var ids []int32
	for _, r := range recs {
		if r.event.Op != change.OpRead {
			t.Fatalf("unexpected %s event", r.event.Op)
		}
		ids = append(ids, r.event.After["id"].(int32))
	}
	// Row 1 from both snapshots, row 2 from the second.
	if len(ids) != 3 || !slices.Contains(ids, 2) {
		t.Fatalf("snapshot reads of ids %v, want 1, then 1 and 2", ids)
	}
}
