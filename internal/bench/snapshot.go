package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// snapshot: capture's initial snapshot of a table of Snapshot rows (snapshot
// mode initial_only: capture exits once it is published) next to COPY ... TO
// STDOUT of the same table into io.Discard.
func (b *Bench) snapshot(ctx context.Context) error {
	return b.withTable(ctx, "snapshot", nil, func(st string, db *pgx.Conn) error { return b.snapshotTable(ctx, st, db) })
}

func (b *Bench) snapshotTable(ctx context.Context, st string, db *pgx.Conn) error {
	rows := b.cfg.Sizes.Snapshot
	for _, s := range []string{insertRows(st, rows), "VACUUM ANALYZE " + st} {
		if _, err := db.Exec(ctx, s); err != nil {
			return err
		}
	}
	started := time.Now()
	tag, err := db.PgConn().CopyTo(ctx, io.Discard, "COPY "+st+" TO STDOUT")
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	baseline := time.Since(started)
	if tag.RowsAffected() != int64(rows) {
		return fmt.Errorf("COPY read %d rows, want %d", tag.RowsAffected(), rows)
	}

	capt, err := b.startCapture(st, "public", []string{st}, "--snapshot-mode", "initial_only")
	if err != nil {
		return err
	}
	from, err := capt.waitMark(ctx, markSnapshot, 2*time.Minute)
	if err != nil {
		capt.stop()
		return err
	}
	select {
	case <-capt.done:
	case <-time.After(30 * time.Minute):
		capt.stop()
		return fmt.Errorf("capture's snapshot did not end within 30 minutes")
	case <-ctx.Done():
		capt.stop()
		return ctx.Err()
	}
	took := time.Since(from)
	if capt.err != nil {
		return capt.exitedError("ending the snapshot without error")
	}
	n, err := countRecords(ctx, b.cfg.Brokers, st+".public."+st, rows)
	if err != nil {
		return err
	}
	if n != rows {
		return fmt.Errorf("the snapshot published %d records, want %d", n, rows)
	}
	b.res.add(Figure{
		Scenario: "snapshot", Unit: "rows/s", Target: 0.8, Baseline: "COPY ... TO STDOUT (pgx, to io.Discard)",
		Value: float64(rows) / took.Seconds(), BaselineValue: float64(rows) / baseline.Seconds(),
		Detail: fmt.Sprintf("%d rows; capture %.1fs (from its snapshot's start to its exit), COPY %.1fs", rows, took.Seconds(), baseline.Seconds()),
	})
	return nil
}
