package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pgx/v5"
)

// checkpointTopic is capture's default checkpoint topic.
const checkpointTopic = "cdcflow.checkpoints"

func readCheckpoint(ctx context.Context, brokers []string, stem string) (capture.Checkpoint, bool, error) {
	return capture.ReadCheckpoint(ctx, brokers, checkpointTopic, stem, stem)
}

// captureBulk: one INSERT of BulkInsert rows, one UPDATE of BulkUpdate.
func (b *Bench) captureBulk(ctx context.Context) error {
	s := b.cfg.Sizes
	return b.captureVsRecvlogical(ctx, "bulk", func(ctx context.Context, db *pgx.Conn, table string) (int, change.LSN, error) {
		if _, err := db.Exec(ctx, insertRows(table, s.BulkInsert)); err != nil {
			return 0, 0, err
		}
		lsn, err := commitMarked(ctx, db, fmt.Sprintf("UPDATE %s SET amount = amount + 1 WHERE id <= %d", table, s.BulkUpdate))
		return s.BulkInsert + s.BulkUpdate, lsn, err
	})
}

// captureOLTP: OLTP single-row transactions from pgbench, then one more.
func (b *Bench) captureOLTP(ctx context.Context) error {
	s := b.cfg.Sizes
	return b.captureVsRecvlogical(ctx, "oltp", func(ctx context.Context, db *pgx.Conn, table string) (int, change.LSN, error) {
		script := filepath.Join(os.TempDir(), table+".sql")
		sql := fmt.Sprintf("\\set c random(1, 1000)\nINSERT INTO %s (customer, amount, note) VALUES (:c, 12.50, 'oltp');\n", table)
		if err := os.WriteFile(script, []byte(sql), 0o600); err != nil {
			return 0, 0, err
		}
		defer os.Remove(script)
		per := s.OLTP / s.OLTPClients
		cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.PGBin, "pgbench"), "-n", "-c", fmt.Sprint(s.OLTPClients), "-j", "2",
			"-t", fmt.Sprint(per), "-f", script, b.cfg.PGDSN)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("pgbench: %w: %s", err, out)
		}
		lsn, err := commitMarked(ctx, db, fmt.Sprintf("INSERT INTO %s (customer, amount, note) VALUES (0, 0, 'last')", table))
		return per*s.OLTPClients + 1, lsn, err
	})
}

// captureVsRecvlogical measures capture and pg_recvlogical reading the same
// WAL range, the changes load commits: both slots are created before the
// load and advanced to its start, neither reads while it runs, then
// pg_recvlogical reads the range alone, then capture does.
func (b *Bench) captureVsRecvlogical(ctx context.Context, workload string, load func(context.Context, *pgx.Conn, string) (int, change.LSN, error)) error {
	return b.withTable(ctx, workload, []string{"_recv"}, func(st string, db *pgx.Conn) error {
		return b.compareCapture(ctx, workload, st, db, load)
	})
}

func (b *Bench) compareCapture(ctx context.Context, workload, st string, db *pgx.Conn, load func(context.Context, *pgx.Conn, string) (int, change.LSN, error)) error {
	recv := st + "_recv"
	// capture creates its slot, publication and topics, then stops. It
	// snapshots nothing (no_data), then or when it starts again, with no
	// checkpoint yet: what it reads is the slot's WAL alone.
	capt, err := b.startCapture(st, "public", []string{st}, "--snapshot-mode", "no_data")
	if err != nil {
		return err
	}
	if _, err := capt.waitMark(ctx, markStreaming, 2*time.Minute); err != nil {
		capt.stop()
		return err
	}
	if err := capt.stop(); err != nil {
		return fmt.Errorf("stop capture: %w", err)
	}
	for _, s := range []string{"CREATE PUBLICATION " + recv + " FOR TABLE " + st,
		"SELECT pg_create_logical_replication_slot('" + recv + "', 'pgoutput')"} {
		if _, err := db.Exec(ctx, s); err != nil {
			return err
		}
	}
	// Both slots start where the load does: what others wrote to the WAL
	// since capture's slot was made is behind both.
	if _, err := waitInactive(ctx, db, st); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "SELECT pg_replication_slot_advance(slot_name, pg_current_wal_lsn()) FROM pg_replication_slots WHERE slot_name IN ($1, $2)", st, recv); err != nil {
		return fmt.Errorf("advance the slots to the load's start: %w", err)
	}

	loadStart := time.Now()
	changes, last, err := load(ctx, db, st)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	loaded := time.Since(loadStart)
	var end string
	if err := db.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
		return err
	}
	b.log.Info("loaded", "workload", workload, "changes", changes, "took", loaded.Round(time.Millisecond), "end", end)

	// pg_recvlogical, from its slot to the end of the load.
	// Timed from its start, connection included (milliseconds): its first
	// output comes only once PostgreSQL decoded the whole first transaction,
	// which capture's time, from its log's "capture streaming", includes.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	started := time.Now()
	out, err := exec.CommandContext(rctx, filepath.Join(b.cfg.PGBin, "pg_recvlogical"), "-d", b.cfg.PGDSN, "-S", recv, "--start",
		"-o", "proto_version=1", "-o", "publication_names="+recv, "-E", end, "-f", os.DevNull, "--no-loop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_recvlogical: %w: %s", err, out)
	}
	baseline := time.Since(started)

	// capture, from its slot to the last transaction of the load.
	capt, err = b.startCapture(st, "public", []string{st}, "--snapshot-mode", "no_data")
	if err != nil {
		return err
	}
	defer capt.stop()
	from, err := capt.waitMark(ctx, markStreaming, 2*time.Minute)
	if err != nil {
		return err
	}
	to, err := b.waitCheckpoint(ctx, capt, st, last, 30*time.Minute)
	if err != nil {
		return err
	}
	peak, err := capt.memory("VmHWM")
	if err != nil {
		return err
	}
	took := to.Sub(from)
	if err := capt.stop(); err != nil {
		return err
	}
	if n, err := countRecords(ctx, b.cfg.Brokers, st+".public."+st, changes); err != nil || n != changes {
		return fmt.Errorf("the topic holds %d change records (%v), want %d", n, err, changes)
	}
	b.res.add(Figure{
		Scenario: "capture, " + workload, Unit: "changes/s", Target: 0.9, Baseline: "pg_recvlogical (pgoutput)",
		Value: float64(changes) / took.Seconds(), BaselineValue: float64(changes) / baseline.Seconds(),
		Detail: fmt.Sprintf("%d changes; capture %.1fs, pg_recvlogical %.1fs; capture peak RSS %d MiB; load %.1fs", changes, took.Seconds(), baseline.Seconds(), peak>>20, loaded.Seconds()),
	})
	if workload == "oltp" {
		b.res.oltpRate = float64(changes) / took.Seconds()
	}
	return nil
}

// memory: capture's peak RSS while it publishes one transaction of LargeTx
// rows, as it is committed (capture streaming throughout).
func (b *Bench) memory(ctx context.Context) error {
	return b.withTable(ctx, "memory", nil, func(st string, db *pgx.Conn) error { return b.largeTransaction(ctx, st, db) })
}

func (b *Bench) largeTransaction(ctx context.Context, st string, db *pgx.Conn) error {
	capt, err := b.startCapture(st, "public", []string{st})
	if err != nil {
		return err
	}
	defer capt.stop()
	if _, err := capt.waitMark(ctx, markStreaming, 2*time.Minute); err != nil {
		return err
	}
	rows := b.cfg.Sizes.LargeTx
	last, err := commitMarked(ctx, db, insertRows(st, rows))
	if err != nil {
		return err
	}
	committed := time.Now()
	done, err := b.waitCheckpoint(ctx, capt, st, last, 30*time.Minute)
	if err != nil {
		return err
	}
	peak, err := capt.memory("VmHWM")
	if err != nil {
		return err
	}
	if err := capt.stop(); err != nil {
		return err
	}
	if n, err := countRecords(ctx, b.cfg.Brokers, st+".public."+st, rows); err != nil || n != rows {
		return fmt.Errorf("the topic holds %d change records (%v), want %d", n, err, rows)
	}
	mib := float64(peak) / (1 << 20)
	b.res.Memory = append(b.res.Memory, MemoryFigure{
		What: fmt.Sprintf("capture peak RSS (VmHWM), one %d-row transaction", rows), MiB: mib,
		TargetMiB: float64(b.cfg.Sizes.RSSTarget), BoundMiB: float64(b.cfg.Sizes.RSSBoundMiB),
		Detail: fmt.Sprintf("published %.0f rows/s after commit", float64(rows)/done.Sub(committed).Seconds()),
	})
	if mib > float64(b.cfg.Sizes.RSSBoundMiB) {
		return fmt.Errorf("capture's peak RSS was %.0f MiB, over the %d MiB bound", mib, b.cfg.Sizes.RSSBoundMiB)
	}
	return nil
}
