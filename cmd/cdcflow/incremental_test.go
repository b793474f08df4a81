package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestIncrementalSnapshotSurvivesKill9 reads a table of 500,000 rows with
// an incremental snapshot, started by a row in the signalling table, while
// a writer updates, deletes and inserts rows of it; the capture process is
// killed with SIGKILL three times during the snapshot, each time once the
// snapshot has committed more chunks since the last start. Each restart
// goes on after the last chunk its checkpoint recorded. Then a
// read_committed consumer that keeps the last value per key must hold
// exactly the table's rows, and no row may have been read twice (a chunk
// published twice would read its rows twice).
func TestIncrementalSnapshotSurvivesKill9(t *testing.T) {
	dsn, brokers, registry := testenv.PGDSN(t), testenv.KafkaBrokers(t), testenv.RegistryURL(t)
	bin := buildBinary(t)
	ctx := context.Background()
	stem := fmt.Sprintf("incr_%d", rand.IntN(1_000_000_000))
	signals := stem + "_signal"
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	exec1 := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	const rows = 500_000
	exec1("CREATE TABLE " + stem + " (id int PRIMARY KEY, version int NOT NULL, pad text NOT NULL)")
	t.Cleanup(func() {
		testenv.DropSlot(ctx, db, stem)
		db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+stem)
		db.Exec(ctx, "DROP TABLE IF EXISTS "+stem)
		db.Exec(ctx, "DROP TABLE IF EXISTS "+signals)
		db.Close(ctx)
	})
	exec1(fmt.Sprintf("INSERT INTO %s SELECT g, 1, 'row ' || g FROM generate_series(1, %d) g", stem, rows))
	exec1("ANALYZE " + stem)

	runs := newCaptureRuns(t, bin, []string{"CDCFLOW_PG_DSN=" + dsn, "CDCFLOW_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"CDCFLOW_REGISTRY_URL=" + registry}, "--tables", "public."+stem, "--slot", stem, "--publication", stem,
		"--topic-prefix", stem, "--status-interval", "100ms", "--snapshot-mode", "no_data", "--signal-table", "public."+signals)
	startCapture := runs.start
	checkpoint := func() capture.Checkpoint {
		t.Helper()
		c, _, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// pending returns the incremental snapshot's state in the checkpoint,
	// nil once it finished.
	pending := func() *capture.IncrementalTable {
		if inc := checkpoint().Incremental; inc != nil && len(inc.Tables) > 0 {
			return &inc.Tables[0]
		}
		return nil
	}

	cmd := startCapture()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitForSlot(t, db, stem)

	// The writer: updates, deletes and inserts all over the table, some of
	// ids deleted before, until the end.
	stopWriter := testenv.ChangeVersioned(t, dsn, stem, rows+rows/5)

	exec1("INSERT INTO "+signals+" VALUES ($1, 'execute-snapshot', $2)", "incr-"+stem,
		`{"data-collections": ["public.`+stem+`"], "type": "incremental"}`)
	begin := time.Now()
	for deadline := time.Now().Add(2 * time.Minute); pending() == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the signal did not reach the checkpoint within 2 minutes")
		}
	}

	// Kill capture each time its checkpoint shows 60,000 more rows read
	// since it started, while the snapshot is not done: the next start must
	// go on after the last chunk that checkpoint recorded.
	resumed := regexp.MustCompile(`msg="incremental snapshot of table starting".* resuming_after=\[(\d*)\]`)
	const kills = 3
	var killedAt []string
	startRows := int64(0)
	for i := 0; i < kills; i++ {
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			p := pending()
			if p == nil {
				t.Fatalf("kill %d: the snapshot finished before the kill (%d kills so far)", i, i)
			}
			if p.Rows >= startRows+60_000 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the snapshot's checkpoint stayed at %d rows for 5 minutes", i, p.Rows)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		p := pending()
		if p == nil || len(p.After) != 1 {
			t.Fatalf("kill %d: checkpoint %+v, want the snapshot part way", i, p)
		}
		killedAt = append(killedAt, p.After[0])
		t.Logf("kill %d after %v: the checkpoint has %d rows read, the last chunk ending at id %s", i, time.Since(begin).Round(time.Millisecond), p.Rows, p.After[0])
		startRows = p.Rows
		cmd = startCapture()
		// The new process says where it goes on.
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if m := resumed.FindSubmatch(runs.lastLog()); m != nil {
				if string(m[1]) != p.After[0] {
					t.Fatalf("restart %d resumed after id %s, the checkpoint's last chunk ended at %s", i, m[1], p.After[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("restart %d did not resume the incremental snapshot within 2 minutes", i)
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Minute); pending() != nil; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot did not finish within 10 minutes: %+v", pending())
		}
	}
	took := time.Since(begin)
	txs := stopWriter()
	exec1("INSERT INTO " + stem + " VALUES (0, 0, 'caught up')")

	// Everything the topic holds once the last insert arrived.
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		t.Fatal(err)
	}
	dec := serde.NewDecoder(reg)
	raw := testenv.ReadCommitted(t, brokers, serde.Topic(stem, "public", stem), 5*time.Minute, func(r *kgo.Record) bool {
		key, err := dec.DecodeKey(ctx, r.Key)
		return err == nil && key["id"] == int32(0) && r.Value != nil
	})
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()

	type row struct {
		version int32
		pad     string
	}
	last := map[int32]*row{}
	reads := map[int32]int{}
	for _, r := range raw {
		key, err := dec.DecodeKey(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		id := key["id"].(int32)
		if ev == nil || ev.Op == change.OpDelete {
			last[id] = nil
			continue
		}
		if ev.Op == change.OpRead {
			if ev.Source.Snapshot != change.SnapshotIncremental {
				t.Fatalf("read of row %d marked %q, want incremental", id, ev.Source.Snapshot)
			}
			reads[id]++
		}
		last[id] = &row{ev.After["version"].(int32), ev.After["pad"].(string)}
	}

	// Row by row against the table.
	problems := 0
	problem := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	rs, err := db.Query(ctx, "SELECT id, version, pad FROM "+stem)
	if err != nil {
		t.Fatal(err)
	}
	table := map[int32]row{}
	for rs.Next() {
		var id, v int32
		var pad string
		if err := rs.Scan(&id, &v, &pad); err != nil {
			t.Fatal(err)
		}
		table[id] = row{v, pad}
		if got := last[id]; got == nil || *got != (row{v, pad}) {
			problem("row %d: the table has version %d %q, Kafka's last value is %+v", id, v, pad, got)
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	for id, got := range last {
		if _, ok := table[id]; !ok && got != nil {
			problem("row %d is in Kafka (%+v), not in the table", id, *got)
		}
	}
	twice := 0
	for id, n := range reads {
		if n > 1 {
			twice++
			problem("row %d read %d times: a chunk was published twice", id, n)
		}
	}
	if problems > 20 {
		t.Errorf("... and %d more problems", problems-20)
	}
	t.Logf("%d rows read in %v across %d kills (after ids %v) while the writer committed %d transactions; the table holds %d rows, the topic %d records; %d rows read twice",
		len(reads), took.Round(time.Millisecond), kills, killedAt, txs, len(table), len(raw), twice)
}
