package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// peakRSS returns a process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// cpuTime returns the CPU time a process used so far (user and system),
// from /proc/<pid>/stat, counted in clock ticks of 10ms (USER_HZ on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command, which is in parentheses and may hold spaces:
	// state is the 3rd field, utime and stime the 14th and 15th.
	_, rest, ok := strings.Cut(string(b), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// BenchmarkLargeTransaction commits one transaction of 2,000,000 inserted
// rows and measures the capture process publishing it to Kafka: its peak RSS
// (which must stay under 256 MiB) and the rows per second from commit to the
// last record committed in Kafka. Run it with scripts/bench.
func BenchmarkLargeTransaction(b *testing.B) {
	const rows = 2_000_000
	dsn, brokers, registry := testenv.PGDSN(b), testenv.KafkaBrokers(b), testenv.RegistryURL(b)
	bin := buildBinary(b)
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		stem := fmt.Sprintf("bigtx_%d", rand.IntN(1_000_000_000))
		db, exec1 := connectBench(b, dsn)
		exec1("CREATE TABLE " + stem + " (id int PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL, note text)")
		cmd := captureProcess(bin, stem, dsn, brokers, registry)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitForSlot(b, db, stem)

		before := walLSN(b, db)
		b.StartTimer()
		started := time.Now()
		exec1(fmt.Sprintf("INSERT INTO %s SELECT g, g %% 1000, (g %% 10000) / 100.0, md5(g::text) FROM generate_series(1, %d) g", stem, rows))
		committed := time.Now()
		after := walLSN(b, db)
		// Done when the transaction's END record is committed in Kafka, or
		// a change of a transaction committed after it (a logical decoding
		// message another session wrote, which capture publishes too).
		for {
			ckpt, found, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
			if err != nil {
				b.Fatal(err)
			}
			if found && (ckpt.Position.Index == ^uint32(0) && ckpt.Position.CommitLSN >= before || ckpt.Position.CommitLSN > after) {
				break
			}
			if time.Since(committed) > 15*time.Minute {
				b.Fatalf("not published within 15 minutes; checkpoint %+v", ckpt)
			}
			time.Sleep(500 * time.Millisecond)
		}
		published := time.Now()
		b.StopTimer()
		rss, err := peakRSS(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		cpu, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		n := countRecords(b, brokers, serde.Topic(stem, "public", stem))
		dropSlot(b, db, stem)
		exec1("DROP PUBLICATION " + stem)
		exec1("DROP TABLE " + stem)
		db.Close(ctx)

		if n != rows {
			b.Fatalf("%d records on the topic, want %d", n, rows)
		}
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(rows/published.Sub(committed).Seconds(), "rows/s-after-commit")
		// Capture's CPU per row, all of its run: what it costs, however
		// busy the machine is with other work.
		b.ReportMetric(float64(cpu.Microseconds())/rows, "capture-CPU-us/row")
		b.ReportMetric(committed.Sub(started).Seconds(), "s-insert")
		b.ReportMetric(published.Sub(committed).Seconds(), "s-publish")
		if rss >= 256<<20 {
			b.Fatalf("capture's peak RSS was %d MiB, over the 256 MiB bound", rss>>20)
		}
	}
}

// connectBench connects to PostgreSQL and returns the connection and a
// function that executes a statement on it or fails tb.
func connectBench(tb testing.TB, dsn string) (*pgx.Conn, func(string)) {
	tb.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	return db, func(sql string) {
		if _, err := db.Exec(ctx, sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
}

// captureProcess is the command of a capture of table public.<stem> on
// the slot, publication and topic prefix stem, writing its log to stderr.
func captureProcess(bin, stem, dsn string, brokers []string, registry string) *exec.Cmd {
	cmd := exec.Command(bin, "capture", "--tables", "public."+stem, "--slot", stem, "--publication", stem, "--topic-prefix", stem)
	cmd.Env = append(os.Environ(), "CDCFLOW_PG_DSN="+dsn, "CDCFLOW_KAFKA_BROKERS="+strings.Join(brokers, ","), "CDCFLOW_REGISTRY_URL="+registry)
	cmd.Stderr = os.Stderr
	return cmd
}

// cleanUpAfter drops the slot, the publication and the table named stem
// when tb ends, also after a failure.
func cleanUpAfter(tb testing.TB, dsn, stem string) {
	tb.Cleanup(func() {
		ctx := context.Background()
		db, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("clean up %s: %v", stem, err)
			return
		}
		defer db.Close(ctx)
		var n int
		if db.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", stem).Scan(&n); n > 0 {
			dropSlot(tb, db, stem)
		}
		for _, sql := range []string{"DROP PUBLICATION IF EXISTS " + stem, "DROP TABLE IF EXISTS " + stem} {
			if _, err := db.Exec(ctx, sql); err != nil {
				tb.Errorf("%s: %v", sql, err)
			}
		}
	})
}

// dropSlot drops a replication slot once a stopped capture's walsender,
// which may hold it a moment longer, released it.
func dropSlot(tb testing.TB, db *pgx.Conn, slot string) {
	tb.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var active bool
		if err := db.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active); err != nil {
			tb.Fatal(err)
		}
		if !active || time.Now().After(deadline) {
			break
		}
	}
	if _, err := db.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
		tb.Fatalf("drop slot %s: %v", slot, err)
	}
}

// walLSN returns PostgreSQL's current WAL position.
func walLSN(tb testing.TB, db *pgx.Conn) change.LSN {
	tb.Helper()
	var s string
	if err := db.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		tb.Fatal(err)
	}
	lsn, err := change.ParseLSN(s)
	if err != nil {
		tb.Fatal(err)
	}
	return lsn
}

// waitForSlot waits until capture's slot reached its consistent point: from
// then on every commit is decoded. The slot is listed as soon as its
// creation starts, with no confirmed_flush_lsn while it waits for the
// transactions running then to end; a transaction that commits meanwhile is
// not decoded.
func waitForSlot(tb testing.TB, db *pgx.Conn, slot string) {
	tb.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL", slot).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("capture created no slot within 60s")
		}
	}
}

// countRecords counts the committed records of a topic.
func countRecords(tb testing.TB, brokers []string, topic string) int {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		got := len(fs.Records())
		if got == 0 {
			return n
		}
		n += got
	}
}
