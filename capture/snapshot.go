package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SnapshotMode says when capture reads the rows the tables already hold.
type SnapshotMode string

// The snapshot modes, named as Debezium names them.
const (
	// SnapshotInitial reads every table once, when the slot is created,
	// then streams. A snapshot a crash interrupted goes on with the tables
	// it had not finished. The default.
	SnapshotInitial SnapshotMode = "initial"
	// SnapshotInitialOnly is SnapshotInitial without streaming: Run returns
	// once the snapshot is committed.
	SnapshotInitialOnly SnapshotMode = "initial_only"
	// SnapshotNoData never reads existing rows: only changes committed after
	// the slot was created are captured.
	SnapshotNoData SnapshotMode = "no_data"
	// SnapshotWhenNeeded is SnapshotInitial, and also recovers when the
	// slot is lost: gone while a checkpoint exists, or invalidated by
	// PostgreSQL (wal_status lost), found when Run starts or while it
	// streams. Capture then creates a new slot, publishes a delete for each
	// row Kafka holds that the tables no longer held when the new slot was
	// created, and reads every captured table again with an incremental
	// snapshot while it streams from the new slot. In the other modes a
	// lost slot stops Run with an error wrapping ErrSlotLost.
	SnapshotWhenNeeded SnapshotMode = "when_needed"
)

func (m SnapshotMode) valid() bool {
	switch m {
	case SnapshotInitial, SnapshotInitialOnly, SnapshotNoData, SnapshotWhenNeeded:
		return true
	}
	return false
}

// snapshotPlan decides which tables to snapshot, given whether the slot was
// just created, the snapshot's state and whether a checkpoint was found
// (openSlot dealt with a lost slot). It returns no tables when none is
// needed.
func (c *Capture) snapshotPlan(created bool, snap *SnapshotState, found bool) (tables []string, reason string) {
	all := slices.Clone(c.tables)
	if c.cfg.Snapshot == SnapshotNoData {
		return nil, ""
	}
	switch {
	case snap == nil && (created || !found):
		return all, "initial snapshot"
	case snap != nil && !snap.Complete():
		return slices.Clone(snap.Pending), "resuming an interrupted snapshot"
	}
	// Tables added to the configuration since the snapshot.
	var added []string
	if snap != nil {
		for _, t := range all {
			if _, ok := snap.Tables[t]; !ok {
				added = append(added, t)
			}
		}
	}
	if len(added) > 0 {
		return added, "tables added to the configuration"
	}
	return nil, ""
}

// exportSnapshot returns a snapshot name valid for as long as holder stays
// open and idle, taken at the returned LSN: from a slot just created by
// ensureSlot, or from a temporary slot on a connection of its own.
func exportSnapshot(ctx context.Context, dsn, slot string) (holder *pgconn.PgConn, name string, at change.LSN, err error) {
	holder, err = connectReplication(ctx, dsn)
	if err != nil {
		return nil, "", 0, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, holder, slot+"_snapshot", "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		holder.Close(context.Background())
		return nil, "", 0, fmt.Errorf("export a snapshot through a temporary slot: %w", err)
	}
	at, err = change.ParseLSN(res.ConsistentPoint)
	return holder, res.SnapshotName, at, err
}

// snapshotTable is one table to read.
type snapshotTable struct {
	name     string // schema.table
	rel      *relation
	table    *change.Table // rel.pub
	estimate int64
	chunks   int // chunks not yet read
}

// chunk is a part of a table, by primary-key range when the key is a single
// integer column.
type chunk struct {
	t      *snapshotTable
	lo, hi *int64 // inclusive bounds; nil is unbounded
}

// rowBatch is what a reader hands the publishing goroutine.
type rowBatch struct {
	t    *snapshotTable
	rows []change.Row
	bad  []badRow // rows that could not be decoded, for the dead-letter topic
	done bool     // the chunk is finished
	err  error
}

type badRow struct {
	text map[string]*string
	err  error
}

// snapshot reads tables as of the exported snapshot name, taken at at, with
// Config.SnapshotWorkers connections in parallel, and publishes each row as
// an op "r" event. Finished tables are recorded in the checkpoint.
func (c *Capture) snapshot(ctx context.Context, conn *pgx.Conn, name string, at change.LSN, tables []string) error {
	snap := c.pub.snapshot
	if snap == nil {
		snap = &SnapshotState{Tables: map[string]change.LSN{}}
	}
	snap.Pending = slices.Clone(tables)
	for _, t := range tables {
		snap.Tables[t] = at
	}
	c.pub.snapshot = snap

	var todo []*snapshotTable
	var total int64
	for _, name := range tables {
		schema, table, _ := splitTable(name)
		src, estimate, err := tableColumns(ctx, conn, schema, table)
		if err != nil {
			return err
		}
		rel, err := newRelation(&c.cfg, src)
		if err != nil {
			return err
		}
		todo = append(todo, &snapshotTable{name: name, rel: rel, table: rel.pub, estimate: estimate})
		total += estimate
	}
	c.log.Info("snapshot starting", "tables", tables, "at", at.String(), "estimated_rows", total, "workers", c.cfg.SnapshotWorkers)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks, err := c.planChunks(ctx, name, todo)
	if err != nil {
		return err
	}
	work := make(chan chunk)
	batches := make(chan rowBatch, c.cfg.SnapshotWorkers*2)
	var wg sync.WaitGroup
	for range c.cfg.SnapshotWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.readChunks(ctx, name, work, batches)
		}()
	}
	go func() {
		defer close(work)
		for _, ch := range chunks {
			select {
			case work <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(batches) }()

	started, lastLog := time.Now(), time.Now()
	var done int64
	marks := newSnapshotMarks(func(r *markedRow) error { return c.snapshotEvent(ctx, r, at) }, func(t *snapshotTable) {
		snap.Pending = slices.DeleteFunc(snap.Pending, func(n string) bool { return n == t.name })
		c.log.Info("snapshot of table finished", "table", t.name)
	})
	for b := range batches {
		if b.err != nil {
			cancel()
			for range batches { // let the readers finish
			}
			return b.err
		}
		for _, bad := range b.bad {
			raw := rawChange{Schema: b.t.table.Schema, Table: b.t.table.Name, Op: "r", After: bad.text}
			if err := c.publishDeadLetter(ctx, b.t.table, at, change.Position{CommitLSN: at}, raw, bad.err); err != nil {
				return err
			}
		}
		for _, row := range b.rows {
			if err := marks.add(b.t, row); err != nil {
				return err
			}
			done++
			c.metrics.snapshotRows.WithLabelValues(b.t.name).Inc()
		}
		if b.done {
			b.t.chunks--
			if b.t.chunks == 0 {
				if err := marks.tableDone(b.t); err != nil {
					return err
				}
			}
		}
		if err := c.pub.maybeCommit(ctx); err != nil {
			return err
		}
		if c.cfg.SnapshotProgress != nil {
			c.cfg.SnapshotProgress(done, total)
		}
		if time.Since(lastLog) >= c.cfg.SnapshotProgressInterval {
			elapsed := time.Since(started).Seconds()
			c.log.Info("snapshot progress", "rows", done, "estimated_total", total,
				"percent", percent(done, total), "rows_per_s", int64(float64(done)/elapsed))
			lastLog = time.Now()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := marks.finish(); err != nil {
		return err
	}
	// The last tables are marked finished after their last reads were
	// produced: when the last read filled a transaction, that one committed
	// with them still pending, and none is open for the state to commit in.
	if err := c.pub.stateChanged(); err != nil {
		return err
	}
	if err := c.pub.commit(ctx); err != nil {
		return err
	}
	if c.cfg.SnapshotProgress != nil {
		c.cfg.SnapshotProgress(done, done)
	}
	elapsed := time.Since(started)
	c.log.Info("snapshot committed", "rows", done, "took", elapsed.Round(time.Millisecond).String(),
		"rows_per_s", int64(float64(done)/max(elapsed.Seconds(), 1e-3)))
	return nil
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return min(100, done*100/total)
}

// readEvent is an event of a snapshot of table t taken at at, at position
// (at, 0) and without a transaction, marked in source.snapshot with
// marker: a read (op "r", row in after), or, for the rows a lost slot
// could not show were deleted, a delete (row, the key, in before).
func (c *Capture) readEvent(t *change.Table, op change.Op, row change.Row, marker string, at change.LSN) *change.Event {
	now := time.Now()
	ev := &change.Event{
		Op: op,
		Source: change.Source{
			Version: Version, Connector: "postgresql", Name: c.cfg.TopicPrefix,
			TsMs: now.UnixMilli(), Snapshot: marker, DB: c.db,
			Sequence: change.SequenceFor(c.pub.lastCommit, at), TsUs: now.UnixMicro(), TsNs: now.UnixNano(),
			Schema: t.Schema, Table: t.Name, LSN: at,
		},
		TsMs:     now.UnixMilli(),
		Position: change.Position{CommitLSN: at},
	}
	if op == change.OpDelete {
		ev.Before = row
	} else {
		ev.After = row
	}
	return ev
}

// snapshotEvent publishes one snapshot read with its source.snapshot marker.
func (c *Capture) snapshotEvent(ctx context.Context, h *markedRow, at change.LSN) error {
	t := h.t.table
	ev := c.readEvent(t, change.OpRead, h.row, h.marker, at)
	rec, err := c.encodeSnapshotRow(ctx, t, ev)
	var valueErr *serde.ValueError
	if errors.As(err, &valueErr) || errors.Is(err, serde.ErrSchemaRejected) {
		raw := rawChange{Schema: t.Schema, Table: t.Name, Op: "r", After: textRow(h.row)}
		return c.publishDeadLetter(ctx, t, at, ev.Position, raw, err)
	}
	if err != nil {
		return fmt.Errorf("encode snapshot row of %s: %w", t, err)
	}
	c.metrics.events.WithLabelValues(t.String(), change.OpRead.String()).Inc()
	// Snapshot rows leave the streaming position where it is.
	return c.pub.produce(ctx, c.pub.last, []serde.Encoded{rec})
}

// decode turns a row of t read in text format, the source table's columns
// in order, into the row capture publishes; a row with a value that does not
// decode comes back as a bad row for the dead-letter topic instead.
func (t *snapshotTable) decode(dec *decoder, salt string, src [][]byte) (change.Row, *badRow) {
	vals := t.rel.values(salt, src)
	row, err := dec.textRow(t.table, vals)
	if err != nil {
		return nil, &badRow{text: textValues(t.table, vals), err: fmt.Errorf("table %s %w", t.name, err)}
	}
	return row, nil
}

// textValues renders a row read in text format for the dead-letter topic.
func textValues(t *change.Table, vals [][]byte) map[string]*string {
	out := make(map[string]*string, len(t.Columns))
	for i, col := range t.Columns {
		if vals[i] != nil {
			s := string(vals[i])
			out[col.Name] = &s
		} else {
			out[col.Name] = nil
		}
	}
	return out
}

// textRow renders a decoded row for the dead-letter topic.
func textRow(row change.Row) map[string]*string {
	out := make(map[string]*string, len(row))
	for k, v := range row {
		if v != nil {
			s := fmt.Sprint(v)
			out[k] = &s
		} else {
			out[k] = nil
		}
	}
	return out
}

// planChunks splits every table into chunks: by ranges of a single integer
// primary key (about Config.SnapshotChunkRows rows each), else one chunk.
func (c *Capture) planChunks(ctx context.Context, snapshotName string, tables []*snapshotTable) ([]chunk, error) {
	conn, err := c.snapshotConn(ctx, snapshotName)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var chunks []chunk
	for _, t := range tables {
		key := t.table.KeyColumns()
		if len(key) != 1 || (key[0].Type != "int2" && key[0].Type != "int4" && key[0].Type != "int8") || t.estimate < int64(c.cfg.SnapshotChunkRows) {
			chunks = append(chunks, chunk{t: t})
			t.chunks = 1
			continue
		}
		var lo, hi *int64
		col := pgx.Identifier{key[0].Name}.Sanitize()
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT min(%s)::int8, max(%s)::int8 FROM %s", col, col, pgx.Identifier{t.table.Schema, t.table.Name}.Sanitize())).Scan(&lo, &hi)
		if err != nil {
			return nil, fmt.Errorf("key range of %s: %w", t.name, err)
		}
		if lo == nil {
			chunks = append(chunks, chunk{t: t})
			t.chunks = 1
			continue
		}
		n := max(1, t.estimate/int64(c.cfg.SnapshotChunkRows))
		step := max(1, (*hi-*lo+1)/n)
		for from := *lo; from <= *hi; from += step {
			a, b := from, min(from+step-1, *hi)
			ch := chunk{t: t, lo: &a, hi: &b}
			if a == *lo { // the first and last chunks are open-ended
				ch.lo = nil
			}
			if b == *hi {
				ch.hi = nil
			}
			chunks = append(chunks, ch)
			t.chunks++
		}
	}
	return chunks, nil
}

// snapshotConn opens a connection whose transaction reads the exported
// snapshot.
func (c *Capture) snapshotConn(ctx context.Context, snapshotName string) (*pgx.Conn, error) {
	conn, err := connect(ctx, c.cfg.DSN)
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		"SET TRANSACTION SNAPSHOT '" + strings.ReplaceAll(snapshotName, "'", "''") + "'",
	} { // connect pinned how values print, as on the replication connection
		if _, err := conn.Exec(ctx, stmt); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("snapshot connection: %s: %w", stmt, err)
		}
	}
	return conn, nil
}

// readChunks reads chunks from work until it closes, in the text format
// pgoutput uses, and hands the rows over in batches.
func (c *Capture) readChunks(ctx context.Context, snapshotName string, work <-chan chunk, out chan<- rowBatch) {
	send := func(b rowBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	conn, err := c.snapshotConn(ctx, snapshotName)
	if err != nil {
		send(rowBatch{err: err})
		return
	}
	defer conn.Close(context.Background())
	dec := newDecoder()
	for ch := range work {
		t, src := ch.t.table, ch.t.rel.src
		cols := make([]string, len(src.Columns))
		for i, col := range src.Columns {
			cols[i] = pgx.Identifier{col.Name}.Sanitize()
		}
		sql := fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), pgx.Identifier{t.Schema, t.Name}.Sanitize())
		var conds []string
		var args [][]byte
		if ch.lo != nil || ch.hi != nil {
			key := pgx.Identifier{t.KeyColumns()[0].Name}.Sanitize()
			if ch.lo != nil {
				args = append(args, []byte(strconv.FormatInt(*ch.lo, 10)))
				conds = append(conds, fmt.Sprintf("%s >= $%d", key, len(args)))
			}
			if ch.hi != nil {
				args = append(args, []byte(strconv.FormatInt(*ch.hi, 10)))
				conds = append(conds, fmt.Sprintf("%s <= $%d", key, len(args)))
			}
			sql += " WHERE " + strings.Join(conds, " AND ")
		}
		rr := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil)
		batch := rowBatch{t: ch.t}
		for rr.NextRow() {
			row, bad := ch.t.decode(dec, c.cfg.MaskSalt, rr.Values())
			if bad != nil {
				batch.bad = append(batch.bad, *bad)
			} else {
				batch.rows = append(batch.rows, row)
			}
			if len(batch.rows) == 500 {
				if !send(batch) {
					rr.Close()
					return
				}
				batch = rowBatch{t: ch.t}
			}
		}
		if _, err := rr.Close(); err != nil {
			send(rowBatch{err: fmt.Errorf("snapshot of %s: %w", ch.t.name, err)})
			return
		}
		batch.done = true
		if !send(batch) {
			return
		}
	}
}
