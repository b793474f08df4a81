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
	n, after := 0, 0
	for after < 30 {
		n++
		if _, err := writer.Exec(context.Background(), fmt.Sprintf("INSERT INTO %s VALUES (%d, 'v'); INSERT INTO %s VALUES (%d)", b, n, a, n+1)); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(c.Tables(), "public."+b) {
			after++
		}
		if time.Now().After(deadline) {
			t.Fatalf("captured tables %v after 90s, want %s among them", c.Tables(), b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.exec(fmt.Sprintf("UPDATE %s SET v = 'updated' WHERE id = %d", b, n))

	ids := func(table string, n int) map[int32][]change.Op {
		got := map[int32][]change.Op{}
		for _, r := range f.consumeAtLeast(serde.Topic(f.prefix, "public", table), n, 90*time.Second, 2*time.Second) {
			got[r.event.After["id"].(int32)] = append(got[r.event.After["id"].(int32)], r.event.Op)
		}
		return got
	}
	gotB := ids(b, n+1)
	reads := 0
	for i := int32(1); i <= int32(n); i++ {
		ops := gotB[i]
		want := 1
		if i == int32(n) {
			want = 2
		}
		if len(ops) != want || (ops[0] != change.OpCreate && ops[0] != change.OpRead) {
			t.Errorf("%s row %d: %v, want it once (read by the snapshot or created)", b, i, ops)
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
