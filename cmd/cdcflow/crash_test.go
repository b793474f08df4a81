package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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

func buildBinary(t testing.TB) string {
	t.Helper()
	return buildPackage(t, "github.com/cdcflow/cdcflow/cmd/cdcflow")
}

// buildPackage builds the command pkg into the test's temporary directory.
func buildPackage(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestCaptureSurvivesKill9 kills the capture process with SIGKILL at random
// moments while a writer keeps changing the table, restarts it each time,
// and then checks with a read_committed consumer that every committed source
// change arrived exactly once and in per-key order, and that the slot was
// never confirmed past the checkpoint Kafka had committed.
func TestCaptureSurvivesKill9(t *testing.T) {
	dsn, brokers, registry := testenv.PGDSN(t), testenv.KafkaBrokers(t), testenv.RegistryURL(t)
	bin := buildBinary(t)
	ctx := context.Background()
	stem := fmt.Sprintf("crash_%d", rand.IntN(1_000_000_000))
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
	exec1("CREATE TABLE " + stem + " (id int PRIMARY KEY, version int NOT NULL)")
	t.Cleanup(func() {
		testenv.DropSlot(ctx, db, stem)
		db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+stem)
		db.Exec(ctx, "DROP TABLE IF EXISTS "+stem)
		db.Close(ctx)
	})

	runs := newCaptureRuns(t, bin, []string{"CDCFLOW_PG_DSN=" + dsn, "CDCFLOW_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"CDCFLOW_REGISTRY_URL=" + registry}, "--tables", "public."+stem, "--slot", stem, "--publication", stem,
		"--topic-prefix", stem, "--status-interval", "100ms", "--snapshot-mode", "no_data")
	startCapture := runs.start

	// Capture sees only what commits after its slot exists (no snapshot
	// here: a snapshot resumed after a kill would fold the changes before it
	// into its reads): start it, and the writer once the slot is there.
	first := startCapture()
	waitForSlot(t, db, stem)

	// The writer: small transactions of inserts, updates (version+1) and
	// deletes, as fast as PostgreSQL takes them. It is the only writer, so
	// its model of the table is the table.
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	type rowState struct {
		version int
		deleted bool
	}
	model := map[int]*rowState{}
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		w, err := pgx.Connect(ctx, dsn)
		if err != nil {
			writeErr = err
			return
		}
		defer w.Close(ctx)
		next := 1
		for wctx.Err() == nil {
			tx, err := w.Begin(ctx)
			if err != nil {
				writeErr = err
				return
			}
			mu.Lock()
			pending := map[int]*rowState{}
			for n := rand.IntN(5) + 1; n > 0; n-- {
				var live []int
				for id, s := range model {
					if !s.deleted && pending[id] == nil {
						live = append(live, id)
					}
				}
				switch r := rand.IntN(10); {
				case r < 4 || len(live) == 0:
					_, err = tx.Exec(ctx, "INSERT INTO "+stem+" VALUES ($1, 1)", next)
					pending[next] = &rowState{version: 1}
					next++
				case r < 9:
					id := live[rand.IntN(len(live))]
					_, err = tx.Exec(ctx, "UPDATE "+stem+" SET version = version + 1 WHERE id = $1", id)
					pending[id] = &rowState{version: model[id].version + 1}
				default:
					id := live[rand.IntN(len(live))]
					_, err = tx.Exec(ctx, "DELETE FROM "+stem+" WHERE id = $1", id)
					pending[id] = &rowState{version: model[id].version, deleted: true}
				}
				if err != nil {
					break
				}
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
			if err == nil {
				for id, s := range pending {
					model[id] = s
				}
			}
			mu.Unlock()
			if err != nil {
				writeErr = err
				return
			}
		}
	}()

	// Kill capture at random moments, checking the slot against the
	// committed checkpoint while it is down.
	const kills = 6
	for i := 0; i < kills; i++ {
		cmd := first
		if i > 0 {
			cmd = startCapture()
		}
		time.Sleep(time.Duration(1500+rand.IntN(2500)) * time.Millisecond)
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid == cmd.Process.Pid {
			t.Fatalf("kill %d: capture exited by itself before the kill (%v)", i, ws)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		var confirmedText *string
		if err := db.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", stem).Scan(&confirmedText); err != nil {
			t.Fatalf("kill %d: read slot: %v", i, err)
		}
		ckpt, found, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
		if err != nil {
			t.Fatalf("kill %d: read checkpoint: %v", i, err)
		}
		confirmed, _ := change.ParseLSN(*confirmedText)
		t.Logf("kill %d: slot confirmed %s, checkpoint %+v (found %v)", i, confirmed, ckpt, found)
		if found && confirmed > ckpt.Confirm {
			t.Fatalf("kill %d: slot confirmed at %s, past the committed checkpoint %s", i, confirmed, ckpt.Confirm)
		}
	}
	stopWriter()
	wg.Wait()
	if writeErr != nil && wctx.Err() == nil {
		t.Fatalf("writer: %v", writeErr)
	}

	// The final capture catches up; then read everything back.
	cmd := startCapture()
	defer cmd.Process.Kill()
	expected := 0
	for _, s := range model {
		expected += s.version
		if s.deleted {
			expected++ // the delete event
		}
	}
	events := consumeAll(t, brokers, registry, serde.Topic(stem, "public", stem), expected)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()

	// Check against the source table too: the model is what it holds.
	rows, err := db.Query(ctx, "SELECT id, version FROM "+stem)
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[int]int{}
	for rows.Next() {
		var id, v int
		rows.Scan(&id, &v)
		inTable[id] = v
	}
	for id, s := range model {
		if v, ok := inTable[id]; ok == s.deleted || (ok && v != s.version) {
			t.Fatalf("row %d: table has %d (present %v), writer committed %+v", id, v, ok, *s)
		}
	}

	// Per key: versions 1..n in order, each once, then the delete if any.
	// The first problems are named; the rest only counted.
	problems := 0
	problem := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if problems > 20 {
			t.Errorf("... and %d more problems", problems-20)
		}
	}()
	byID := map[int][]*change.Event{}
	for _, ev := range events {
		row := ev.After
		if ev.Op == change.OpDelete {
			row = ev.Before
		}
		id := int(row["id"].(int32))
		byID[id] = append(byID[id], ev)
	}
	for id, s := range model {
		evs := byID[id]
		want := s.version
		if s.deleted {
			want++
		}
		if len(evs) != want {
			problem("row %d: %d events, want %d (version %d, deleted %v)", id, len(evs), want, s.version, s.deleted)
			continue
		}
		for i, ev := range evs {
			switch {
			case i < s.version:
				if ev.After["version"] != int32(i+1) || (i == 0) != (ev.Op == change.OpCreate) {
					problem("row %d event %d: op %s version %v, want version %d", id, i, ev.Op, ev.After["version"], i+1)
				}
			case ev.Op != change.OpDelete:
				problem("row %d event %d: op %s, want the delete", id, i, ev.Op)
			}
		}
	}
	if len(byID) != len(model) {
		t.Errorf("events for %d rows, the writer touched %d", len(byID), len(model))
	}
	t.Logf("%d rows, %d change events, each exactly once in per-key order across %d kills", len(model), len(events), kills)
}

// captureRuns starts cdcflow capture processes one after the other, with
// the same arguments and environment. Each run's log is kept and, when the
// test fails, its tail printed: a lost or late change is then explained by
// what capture said.
type captureRuns struct {
	t    *testing.T
	bin  string
	env  []string
	args []string
	dir  string
	logs []string
}

func newCaptureRuns(t *testing.T, bin string, env []string, args ...string) *captureRuns {
	r := &captureRuns{t: t, bin: bin, env: env, args: args, dir: t.TempDir()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, path := range r.logs {
			b, _ := os.ReadFile(path)
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			t.Logf("--- %s (last %d lines)\n%s", filepath.Base(path), len(lines), strings.Join(lines, "\n"))
		}
	})
	return r
}

// start starts a capture process, writing its log to a file of its own.
func (r *captureRuns) start() *exec.Cmd {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{"capture"}, r.args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	path := filepath.Join(r.dir, fmt.Sprintf("capture-%d.log", len(r.logs)))
	r.logs = append(r.logs, path)
	logf, err := os.Create(path)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	return cmd
}

// lastLog returns what the last run logged so far.
func (r *captureRuns) lastLog() []byte {
	b, _ := os.ReadFile(r.logs[len(r.logs)-1])
	return b
}

// consumeAll reads a change topic with read_committed isolation until it has
// want change events (tombstones are not counted), then makes sure nothing
// more arrives.
func consumeAll(t *testing.T, brokers []string, registry, topic string, want int) []*change.Event {
	t.Helper()
	reg, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		t.Fatal(err)
	}
	dec := serde.NewDecoder(reg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var events []*change.Event
	deadline := time.Now().Add(5 * time.Minute)
	quiet := time.Time{}
	for {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			ev, err := dec.DecodeEvent(context.Background(), r.Value)
			if err != nil {
				t.Fatalf("decode %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if ev != nil {
				events = append(events, ev)
			}
		})
		switch {
		case len(events) > want:
			sort.Slice(events, func(i, j int) bool { return events[i].Position.Compare(events[j].Position) < 0 })
			for i := 1; i < len(events); i++ {
				if events[i].Position == events[i-1].Position {
					t.Fatalf("change at %s published twice (%d events, want %d)", events[i].Position, len(events), want)
				}
			}
			t.Fatalf("%d events, want %d", len(events), want)
		case len(events) == want && quiet.IsZero():
			quiet = time.Now().Add(3 * time.Second) // wait for duplicates that should not come
		case len(events) == want && time.Now().After(quiet):
			return events
		case time.Now().After(deadline):
			// Return what arrived: the per-key check names the missing ones.
			t.Errorf("only %d of %d events arrived within 5 minutes", len(events), want)
			return events
		}
	}
}
