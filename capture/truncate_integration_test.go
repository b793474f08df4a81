package capture_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTruncateEvents captures TRUNCATE with skipped.operations none, on a
// topic of three partitions: each partition gets the truncate, in order
// with its rows' changes, as Debezium writes it (null key, op t, neither
// before nor after, the source block and the transaction's position); a
// TRUNCATE of two tables is one event per table.
func TestTruncateEvents(t *testing.T) {
	f := newFixture(t)
	other := f.name + "_b"
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text)", f.name))
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", other))
	t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+other) })
	topic := serde.Topic(f.prefix, "public", f.name)
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	f.start(capture.Config{Tables: []string{"public." + f.name, "public." + other}, SkippedOperations: []change.Op{}})
	for i := 1; i <= 6; i++ {
		f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d, 'v')", f.name, i))
	}
	f.exec("INSERT INTO " + other + " VALUES (1)")
	from := f.walLSN()
	f.exec(fmt.Sprintf("TRUNCATE %s, %s", f.name, other))
	to := f.walLSN()
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (7, 'after')", f.name))

	recs := f.rawRecords(topic, 6+3+1)
	dec := serde.NewDecoder(f.reg)
	ctx := context.Background()
	truncates := map[int32]*change.Event{}
	var truncatePos change.Position
	for _, r := range recs {
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Op != change.OpTruncate {
			if ev.After["id"] == int32(7) && (truncatePos == change.Position{}) {
				t.Errorf("the insert after the TRUNCATE arrived on partition %d before any truncate", r.Partition)
			}
			continue
		}
		if r.Key != nil {
			t.Errorf("truncate on partition %d has key %x, want null", r.Partition, r.Key)
		}
		if _, dup := truncates[r.Partition]; dup {
			t.Errorf("two truncates on partition %d", r.Partition)
		}
		truncates[r.Partition], truncatePos = ev, ev.Position
		s := ev.Source
		if ev.Before != nil || ev.After != nil || s.Table != f.name || s.Schema != "public" || s.Snapshot != "false" ||
			s.LSN < from || s.LSN >= to || ev.Transaction == nil || ev.Transaction.CommitLSN <= s.LSN || ev.Transaction.CommitLSN > to {
			t.Errorf("truncate on partition %d: %+v (TRUNCATE wrote WAL %s..%s)", r.Partition, ev, from, to)
		}
	}
	if len(truncates) != 3 {
		t.Fatalf("truncates on partitions %v, want one on each of 3", slices.Sorted(maps.Keys(truncates)))
	}
	// Per partition: every insert before the TRUNCATE precedes it, the
	// insert after follows it.
	seen := map[int32]bool{}
	for _, r := range recs {
		ev, _ := dec.DecodeEvent(ctx, r.Value)
		if ev.Op == change.OpTruncate {
			seen[r.Partition] = true
			continue
		}
		before := ev.Position.Compare(truncatePos) < 0
		if before == seen[r.Partition] {
			t.Errorf("partition %d: change at %s on the wrong side of the truncate at %s", r.Partition, ev.Position, truncatePos)
		}
	}
	otherRecs := f.rawRecords(serde.Topic(f.prefix, "public", other), 2)
	ev, err := dec.DecodeEvent(ctx, otherRecs[1].Value)
	if err != nil || ev.Op != change.OpTruncate || ev.Source.Table != other || ev.Position.CommitLSN != truncatePos.CommitLSN ||
		ev.Position.Index == truncatePos.Index {
		t.Errorf("%s: second record %+v (%v), want the truncate in the same transaction", other, ev, err)
	}
}

// TestTruncatesSkippedByDefault: without SkippedOperations, capture leaves
// truncates out, as Debezium's skipped.operations=t does.
func TestTruncatesSkippedByDefault(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	f.exec("TRUNCATE " + f.name)
	f.exec("INSERT INTO " + f.name + " VALUES (2)")
	recs := f.consumeAtLeast(serde.Topic(f.prefix, "public", f.name), 2, 60*time.Second, 2*time.Second)
	if len(recs) != 2 || recs[0].event.Op != change.OpCreate || recs[1].event.Op != change.OpCreate {
		t.Fatalf("records %+v, want the two inserts only", recs)
	}
}
