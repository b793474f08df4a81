package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/internal/testenv"
)

// BenchmarkOLTPBacklog measures capture draining a backlog of 200,000
// single-row transactions that pgbench wrote with 4 clients while capture
// was stopped: the transactions per second from capture's start to the
// last of them committed in Kafka, with the transaction topic on (a BEGIN
// and an END record per transaction). Set CDCFLOW_PPROF_ADDR to profile it.
func BenchmarkOLTPBacklog(b *testing.B) {
	const txs, clients = 200_000, 4
	if _, err := exec.LookPath("pgbench"); err != nil {
		b.Fatalf("pgbench not found (%v): install PostgreSQL's client tools", err)
	}
	dsn, brokers, registry := testenv.PGDSN(b), testenv.KafkaBrokers(b), testenv.RegistryURL(b)
	bin := buildBinary(b)
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		stem := fmt.Sprintf("oltp_%d", rand.IntN(1_000_000_000))
		db, exec1 := connectBench(b, dsn)
		exec1("CREATE TABLE " + stem + " (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL, note text)")
		cleanUpAfter(b, dsn, stem)
		start := func() *exec.Cmd {
			cmd := captureProcess(bin, stem, dsn, brokers, registry)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			return cmd
		}
		stop := func(cmd *exec.Cmd) {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		cmd := start()
		waitForSlot(b, db, stem)
		// A first change committed, so that a checkpoint exists and the
		// measured start streams rather than snapshots.
		exec1("INSERT INTO " + stem + " (customer, amount) VALUES (0, 0)")
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			ckpt, found, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
			if err != nil {
				b.Fatal(err)
			}
			if found && ckpt.Position.CommitLSN > 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the first change was not published within a minute")
			}
		}
		stop(cmd) // the slot holds the backlog from here

		script := filepath.Join(b.TempDir(), "insert.sql")
		if err := os.WriteFile(script, []byte("\\set c random(1, 1000)\n\\set a random(1, 100000)\nINSERT INTO "+stem+" (customer, amount, note) VALUES (:c, :a / 100.0, md5(random()::text));\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		load := exec.Command("pgbench", "-n", "-c", fmt.Sprint(clients), "-j", "2", "-t", fmt.Sprint(txs/clients), "-f", script, dsn)
		if out, err := load.CombinedOutput(); err != nil {
			b.Fatalf("pgbench: %v\n%s", err, out)
		}
		after := walLSN(b, db)
		exec1("INSERT INTO " + stem + " (customer, amount) VALUES (0, 0)") // committed after the backlog

		b.StartTimer()
		started := time.Now()
		cmd = start()
		// Done when a change of the transaction after the backlog is
		// committed in Kafka.
		for {
			ckpt, found, err := capture.ReadCheckpoint(ctx, brokers, "cdcflow.checkpoints", stem, stem)
			if err != nil {
				b.Fatal(err)
			}
			if found && ckpt.Position.CommitLSN > after {
				break
			}
			if time.Since(started) > 10*time.Minute {
				b.Fatalf("backlog not published within 10 minutes; checkpoint %+v", ckpt)
			}
			time.Sleep(100 * time.Millisecond)
		}
		elapsed := time.Since(started)
		b.StopTimer()
		rss, err := peakRSS(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		cpu, err := cpuTime(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		stop(cmd)
		db.Close(ctx)
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(txs/elapsed.Seconds(), "tx/s")
		b.ReportMetric(float64(cpu.Microseconds())/txs, "capture-CPU-us/tx")
	}
}
