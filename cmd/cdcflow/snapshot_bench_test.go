package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
)

// BenchmarkSnapshot reads a table of 1,000,000 rows with capture in mode
// initial_only (the snapshot, then exit), next to COPY ... TO STDOUT of the
// same table: rows per second of each, their ratio, and capture's CPU per
// row and peak RSS.
func BenchmarkSnapshot(b *testing.B) {
	const rows = 1_000_000
	dsn, brokers, registry := testenv.PGDSN(b), testenv.KafkaBrokers(b), testenv.RegistryURL(b)
	bin := buildBinary(b)
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		stem := fmt.Sprintf("snapbench_%d", rand.IntN(1_000_000_000))
		db, exec1 := connectBench(b, dsn)
		exec1("CREATE TABLE " + stem + " (id int PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL, note text)")
		cleanUpAfter(b, dsn, stem)
		exec1(fmt.Sprintf("INSERT INTO %s SELECT g, g %% 1000, (g %% 10000) / 100.0, md5(g::text) FROM generate_series(1, %d) g", stem, rows))
		exec1("VACUUM ANALYZE " + stem)

		copyStarted := time.Now()
		if _, err := db.PgConn().CopyTo(ctx, io.Discard, "COPY "+stem+" TO STDOUT"); err != nil {
			b.Fatal(err)
		}
		copyTook := time.Since(copyStarted)
		db.Close(ctx)

		b.StartTimer()
		started := time.Now()
		cmd := captureProcess(bin, stem, dsn, brokers, registry)
		cmd.Args = append(cmd.Args, "--snapshot-mode", "initial_only")
		if err := cmd.Run(); err != nil {
			b.Fatalf("capture: %v", err)
		}
		took := time.Since(started)
		b.StopTimer()
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
		n := countRecords(b, brokers, stem+".public."+stem)
		if n != rows {
			b.Fatalf("%d records on the topic, want %d", n, rows)
		}
		b.ReportMetric(rows/took.Seconds(), "rows/s")
		b.ReportMetric(rows/copyTook.Seconds(), "copy-rows/s")
		b.ReportMetric(copyTook.Seconds()/took.Seconds(), "ratio-to-copy")
		b.ReportMetric(float64(cpu.Microseconds())/rows, "capture-CPU-us/row")
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}
