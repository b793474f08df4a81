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
	"github.com/jackc/pgx/v5"
)

// TestTablesCreatedAfterStartJoinAPattern: a table created while capture
// streams, matching its pattern, is added to the publication and captured
// without a restart of the process: the rows written before capture saw it
// come from a snapshot of it, the later ones from the stream, each once;
// the table captured all along loses nothing meanwhile. A new table without
// a key is left out until it gets one.
//
// A transaction left open while capture adds the table holds back the
// point its snapshot is taken at (PostgreSQL waits for the transactions
// running when the temporary slot is created), as other sessions' work does
// on a busy server: rows committed after the table was added to the
// publication but before that point are both in the snapshot and in the
// stream, and must come once. The rows that must come from the stream, and
// the update, are written once capture streams again after adding the
// table: before that, they may still fall before the snapshot's point and
// come as reads (the update as a read of the updated row).
func TestTablesCreatedAfterStartJoinAPattern(t *testing.T) {
	f := newFixture(t)
	a, b, nokey := f.name+"_a", f.name+"_b", f.name+"_nokey"
	for _, tbl := range []string{a, b, nokey} {
		t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+tbl) })
	}
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", a))
	c := f.startCapture(capture.Config{Tables: []string{"public." + f.name + "_*"}, TableRefreshInterval: 300 * time.Millisecond})
	if got := c.Tables(); !slices.Equal(got, []string{"public." + a}) {
		t.Fatalf("captured tables %v, want %s", got, a)
	}
	f.exec("INSERT INTO " + a + " VALUES (1)")
	blocker, err := pgx.Connect(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(context.Background())
	if _, err := blocker.Exec(context.Background(), "BEGIN; SELECT txid_current()"); err != nil {
		t.Fatal(err)
	}
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text)", b))
	f.exec(fmt.Sprintf("CREATE TABLE %s (v text)", nokey))
	// Rows go on being written, one transaction each, before capture sees
	// the table, while it adds it and reads its snapshot, and after.
	writer, err := pgx.Connect(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(context.Background())
	deadline := time.Now().Add(90 * time.Second)
	n, added, streamed, firstStreamed := 0, 0, 0, 0
	for streamed < 30 {
		n++
		if _, err := writer.Exec(context.Background(), fmt.Sprintf("INSERT INTO %s VALUES (%d, 'v'); INSERT INTO %s VALUES (%d)", b, n, a, n+1)); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(c.Tables(), "public."+b) {
			if added++; added == 10 {
				if _, err := blocker.Exec(context.Background(), "COMMIT"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st := c.Status(); st.Restarts == 1 && st.Phase == capture.PhaseStreaming {
			if streamed++; streamed == 1 {
				firstStreamed = n + 1 // n may have committed before the snapshot's point
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("captured tables %v, status %+v after 90s, want %s among them and streaming", c.Tables(), c.Status(), b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.exec(fmt.Sprintf("UPDATE %s SET v = 'updated' WHERE id = %d", b, n))
	// The temporary slot that exported the new table's snapshot holds WAL
	// and the catalog xmin back: it is gone once the snapshot was read, not
	// kept while capture streams.
	for held, until := 1, time.Now().Add(30*time.Second); held > 0; {
		if err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", f.name+"_snapshot").Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held > 0 && time.Now().After(until) {
			t.Fatalf("slot %s_snapshot still there 30s after capture streams again", f.name)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The records by id; on a timeout, what came, for the checks below to
	// say which rows or ops are missing.
	ids := func(table string, n int) map[int32][]change.Op {
		got := map[int32][]change.Op{}
		recs := f.consumeUpTo(serde.Topic(f.prefix, "public", table), n, 90*time.Second, 2*time.Second)
		if len(recs) < n {
			t.Errorf("read %d of %d records from %s before timing out", len(recs), n, table)
		}
		for _, r := range recs {
			got[r.event.After["id"].(int32)] = append(got[r.event.After["id"].(int32)], r.event.Op)
		}
		return got
	}
	gotB := ids(b, n+1)
	reads := 0
	for i := int32(1); i <= int32(n); i++ {
		ops := gotB[i]
		if len(ops) == 0 || (ops[0] != change.OpCreate && ops[0] != change.OpRead) {
			t.Errorf("%s row %d: %v, want it once (read by the snapshot or created)", b, i, ops)
		} else if i < int32(n) && len(ops) != 1 {
			t.Errorf("%s row %d: %v, want it once (read by the snapshot or created)", b, i, ops)
		} else if i >= int32(firstStreamed) && ops[0] != change.OpCreate {
			t.Errorf("%s row %d, written while capture streamed again: %v, want it created", b, i, ops)
		} else if i == int32(n) && !slices.Equal(ops, []change.Op{change.OpCreate, change.OpUpdate}) {
			t.Errorf("%s row %d: %v, want it created, then updated, both streamed", b, i, ops)
		}
		if len(ops) > 0 && ops[0] == change.OpRead {
			reads++
		}
	}
	if len(gotB) != n {
		t.Errorf("%s: %d rows, want %d", b, len(gotB), n)
	}
	t.Logf("%s: %d rows, %d read by the snapshot of the new table, %d streamed", b, n, reads, n-reads)
	gotA := ids(a, n+1)
	for i := int32(1); i <= int32(n+1); i++ {
		if ops := gotA[i]; len(ops) != 1 || ops[0] != change.OpCreate {
			t.Errorf("%s row %d: %v, want one create", a, i, ops)
		}
	}
	if slices.Contains(c.Tables(), "public."+nokey) {
		t.Errorf("the table without a key is captured: %v", c.Tables())
	}
	f.exec("ALTER TABLE " + nokey + " ADD COLUMN id serial PRIMARY KEY")
	f.exec("INSERT INTO " + nokey + " (v) VALUES ('keyed')")
	for !slices.Contains(c.Tables(), "public."+nokey) {
		if time.Now().After(deadline.Add(90 * time.Second)) {
			t.Fatalf("captured tables %v: the table that got a key is not among them", c.Tables())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for st := c.Status(); st.Restarts != 2 || st.Phase != capture.PhaseStreaming; st = c.Status() {
		if time.Now().After(deadline.Add(90 * time.Second)) {
			t.Fatalf("status %+v, want streaming after 2 restarts in place", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
