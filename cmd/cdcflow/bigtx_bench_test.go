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
		db, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		exec1 := func(sql string) {
			if _, err := db.Exec(ctx, sql); err != nil {
				b.Fatalf("%s: %v", sql, err)
			}
		}
		exec1("CREATE TABLE " + stem + " (id int PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL, note text)")
		cmd := exec.Command(bin, "capture", "--tables", "public."+stem, "--slot", stem, "--publication", stem, "--topic-prefix", stem)
		cmd.Env = append(os.Environ(), "CDCFLOW_PG_DSN="+dsn, "CDCFLOW_KAFKA_BROKERS="+strings.Join(brokers, ","), "CDCFLOW_REGISTRY_URL="+registry)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitForSlot(b, db, stem)

		b.StartTimer()
		started := time.Now()
		exec1(fmt.Sprintf("INSERT INTO %s SELECT g, g %% 1000, (g %% 10000) / 100.0, md5(g::text) FROM generate_series(1, %d) g", stem, rows))
		committed := time.Now()
		// Done when the transaction's END record is committed in Kafka.
		for {
			ckpt, found, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
			if err != nil {
				b.Fatal(err)
			}
			if found && ckpt.Position.Index == ^uint32(0) {
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
		cmd.Process.Kill()
		cmd.Wait()
		n := countRecords(b, brokers, serde.Topic(stem, "public", stem))
		// The killed capture's walsender may hold the slot a moment longer.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var active bool
			if err := db.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", stem).Scan(&active); err != nil {
				b.Fatal(err)
			}
			if !active || time.Now().After(deadline) {
				break
			}
		}
		exec1("SELECT pg_drop_replication_slot('" + stem + "')")
		exec1("DROP PUBLICATION " + stem)
		exec1("DROP TABLE " + stem)
		db.Close(ctx)

		if n != rows {
			b.Fatalf("%d records on the topic, want %d", n, rows)
		}
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(rows/published.Sub(committed).Seconds(), "rows/s-after-commit")
		b.ReportMetric(committed.Sub(started).Seconds(), "s-insert")
		b.ReportMetric(published.Sub(committed).Seconds(), "s-publish")
		if rss >= 256<<20 {
			b.Fatalf("capture's peak RSS was %d MiB, over the 256 MiB bound", rss>>20)
		}
	}
}

func waitForSlot(tb testing.TB, db *pgx.Conn, slot string) {
	tb.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil {
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
