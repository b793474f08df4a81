package capture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Incremental snapshots read tables again while capture streams, chunk by
// chunk in primary-key order, as Debezium's incremental snapshots do
// (after Netflix's DBLog). A chunk is read by a transaction of its own,
// whose MVCC snapshot is the chunk's low watermark, and which ends by
// writing a logical decoding message, the high watermark. The stream
// reaches the high watermark after every transaction the chunk's snapshot
// sees; the transactions it does not see may come before the watermark
// too. From the moment a table's snapshot starts, capture notes which
// transaction last changed each key of it; at the high watermark it drops
// from the chunk every row whose key a transaction invisible to the chunk's
// snapshot changed (those changes are newer than the row, and were or will
// be published as they stream), publishes the others as reads, marked
// source.snapshot "incremental", and commits them in one Kafka transaction
// with the checkpoint that records the chunk's last key. A restart goes on
// after the last chunk committed.
//
// Debezium's low watermark is a position in the stream. In PostgreSQL
// that is not exact: a transaction becomes visible to snapshots only some
// time after its commit record is written, so a transaction that streams
// before such a watermark can still be invisible to a chunk read after it,
// and its newer value would be overwritten by the chunk's stale one.
// Comparing with the chunk's snapshot itself (pg_current_snapshot) has no
// such gap. When a table starts, capture waits until the transactions
// running then have ended (or are idle, or prepared: they cannot commit
// before tracking began), so that every transaction that streamed before
// tracking began is visible to the chunks.

// WatermarkPrefix is the prefix of the logical decoding messages that
// close the chunks of incremental snapshots (their high watermarks).
// Capture never publishes them.
const WatermarkPrefix = "cdcflow_watermark"

// IncrementalState is what is left of the incremental snapshots, committed
// with every checkpoint.
type IncrementalState struct {
	// Tables are the tables to read, in order; the first is being read.
	Tables []IncrementalTable `json:"tables"`
}

// IncrementalTable is the incremental snapshot of one table.
type IncrementalTable struct {
	Table string `json:"table"` // schema.table
	// Filter is an SQL condition on the table's rows: only those that
	// satisfy it are read (Debezium's additional-conditions).
	Filter string `json:"filter,omitempty"`
	// After is the key of the last row of the last chunk published, its
	// columns' text values in the key's order; empty before the first.
	After []string `json:"after,omitempty"`
	// Rows counts the reads published.
	Rows int64 `json:"rows"`
	// Estimate is PostgreSQL's estimate of the table's rows when its
	// snapshot started; 0 when it has none.
	Estimate int64 `json:"estimate,omitempty"`
	// Reason says why the table is read: "signal <id>", or "slot lost".
	Reason string `json:"reason,omitempty"`
}

// IncrementalProgress is how far the incremental snapshot of one table
// got, as [Capture.IncrementalSnapshots] reports it.
type IncrementalProgress struct {
	Table  string // schema.table
	Filter string // the condition on its rows; empty: every row
	Reason string // "signal <id>" or "slot lost"
	// Rows counts the reads published; Estimate is PostgreSQL's estimate
	// of the table's rows when its snapshot started (0: none).
	Rows, Estimate int64
	// Running is true for the table being read; the others wait their
	// turn, unless Done.
	Running bool
	// Done is true for a table whose snapshot finished, Stopped for one a
	// stop-snapshot signal ended, since Run started.
	Done, Stopped bool
}

// IncrementalSnapshots returns the incremental snapshots to do, being done
// (the first, Running) and done since Run started (Done or Stopped, the
// last 100). It is safe to call while Run runs, and after.
func (c *Capture) IncrementalSnapshots() []IncrementalProgress {
	c.progress.mu.Lock()
	defer c.progress.mu.Unlock()
	return slices.Clone(c.progress.list)
}

// progressBoard holds the progress IncrementalSnapshots reports.
type progressBoard struct {
	mu   sync.Mutex
	list []IncrementalProgress
}

// incremental is the incremental snapshot machinery of a running stream.
// It is used from the replication loop only.
type incremental struct {
	track    *keyTracker // of the table being read; nil before it starts
	st       *snapshotTable
	keyOrder []string // its key columns in the key index's order
	fence    fence
	inflight *chunkRead // a chunk read whose high watermark has not streamed yet
	ended    []IncrementalProgress
	lastLog  time.Time
}

// chunkRead is a chunk read and waiting for its high watermark.
type chunkRead struct {
	table    string
	mark     string // the high watermark's content
	snap     pgSnapshot
	st       *snapshotTable
	rows     []chunkRow
	last     []string // the key of the last row read
	complete bool     // no rows after these
}

type chunkRow struct {
	key string // the key's text values, as keyTracker keys them
	row change.Row
	bad *badRow
}

// incrementalStep moves the incremental snapshots on. The replication loop
// calls it between messages: it starts the next table and reads the next
// chunk once the last one's high watermark streamed. It never waits for
// other transactions: a fence not passed yet is polled again later.
func (c *Capture) incrementalStep(ctx context.Context, conn *pgx.Conn) error {
	inc, st := c.incr, c.pub.incremental
	if inc == nil || st == nil || len(st.Tables) == 0 || inc.inflight != nil {
		return nil
	}
	cur := &st.Tables[0]
	if inc.track == nil || inc.track.table != cur.Table {
		ok, err := c.startIncrementalTable(ctx, conn, cur)
		if err != nil || !ok {
			return err
		}
	}
	if !inc.fence.passed() {
		if time.Now().Before(inc.fence.next) {
			return nil
		}
		if err := inc.fence.poll(ctx, conn); err != nil {
			return err
		}
		if !inc.fence.passed() {
			if time.Since(inc.fence.logged) >= 10*time.Second {
				c.log.Info("incremental snapshot waits for the transactions running when it started to end",
					"table", cur.Table, "xids", inc.fence.xids(), "waiting", time.Since(inc.fence.since).Round(time.Second),
					"hint", "find them with SELECT pid, state, xact_start FROM pg_stat_activity WHERE backend_xid = ANY(...)")
				inc.fence.logged = time.Now()
			}
			return nil
		}
	}
	return c.readIncrementalChunk(ctx, conn, cur)
}

// incrementalWake returns when the replication loop should wake up at the
// latest, no later than deadline: the next poll of a fence.
func (c *Capture) incrementalWake(deadline time.Time) time.Time {
	if inc := c.incr; inc != nil && inc.track != nil && !inc.fence.passed() && inc.fence.next.Before(deadline) {
		return inc.fence.next
	}
	return deadline
}

// startIncrementalTable starts tracking the changes of cur and takes the
// fence its chunks wait for. It drops the table, and says so, when it
// cannot be read (gone, without a key, a filter PostgreSQL rejects).
func (c *Capture) startIncrementalTable(ctx context.Context, conn *pgx.Conn, cur *IncrementalTable) (bool, error) {
	inc := c.incr
	inc.track, inc.inflight = nil, nil
	if !slices.Contains(c.tables, cur.Table) {
		return false, c.abandonIncrementalTable(unreadableError{fmt.Errorf("table %s is no longer captured", cur.Table)})
	}
	st, order, estimate, err := c.incrementalTable(ctx, conn, cur.Table)
	if err == nil && cur.Filter != "" {
		sql := fmt.Sprintf("SELECT 1 FROM %s WHERE (%s) LIMIT 0", pgx.Identifier{st.table.Schema, st.table.Name}.Sanitize(), cur.Filter)
		_, err = conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Close()
	}
	if err != nil {
		return false, c.abandonIncrementalTable(err)
	}
	if cur.Estimate == 0 {
		cur.Estimate = estimate
	}
	inc.st, inc.keyOrder = st, order
	inc.track = newKeyTracker(cur.Table, order)
	inc.fence = fence{since: time.Now(), logged: time.Now()}
	if err := inc.fence.poll(ctx, conn); err != nil {
		return false, err
	}
	c.log.Info("incremental snapshot of table starting", "table", cur.Table, "filter", cur.Filter, "reason", cur.Reason,
		"estimated_rows", cur.Estimate, "resuming_after", cur.After, "chunk_rows", c.cfg.IncrementalChunkRows)
	c.publishProgress()
	return true, nil
}

// incrementalTable reads the columns of table from the catalog, as the
// stream would describe them, and its key columns in the order of its key
// index.
func (c *Capture) incrementalTable(ctx context.Context, conn *pgx.Conn, table string) (*snapshotTable, []string, int64, error) {
	schema, name, _ := splitTable(table)
	src, estimate, err := tableColumns(ctx, conn, schema, name)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(src.Columns) == 0 {
		return nil, nil, 0, unreadableError{fmt.Errorf("table %s does not exist", table)}
	}
	rel, err := newRelation(&c.cfg, src)
	if err != nil {
		return nil, nil, 0, unreadableError{err}
	}
	order, err := keyOrder(ctx, conn, schema, name)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(order) == 0 {
		return nil, nil, 0, unreadableError{fmt.Errorf("table %s has no primary key or replica identity index to read it in chunks by", table)}
	}
	return &snapshotTable{name: table, rel: rel, table: rel.pub, estimate: estimate}, order, estimate, nil
}

// keyOrder returns the columns of a table's key (its primary key, else
// its replica identity index) in the index's order.
func keyOrder(ctx context.Context, conn *pgx.Conn, schema, table string) ([]string, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE n.nspname = $1 AND c.relname = $2 AND i.indexrelid = (
			SELECT j.indexrelid FROM pg_index j WHERE j.indrelid = c.oid AND (j.indisprimary OR j.indisreplident)
			ORDER BY j.indisprimary DESC LIMIT 1)
		ORDER BY k.ord`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("read the key of %s.%s: %w", schema, table, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the key of %s.%s: %w", schema, table, err)
	}
	return names, nil
}

// unreadableError says why a table cannot be read by an incremental
// snapshot.
type unreadableError struct{ err error }

func (e unreadableError) Error() string { return e.err.Error() }
func (e unreadableError) Unwrap() error { return e.err }

// abandonIncrementalTable ends the incremental snapshot of the current
// table after err when err is about the table or its filter: an
// unreadableError, or an SQL error PostgreSQL answered the chunk's query
// with (syntax, undefined column, a data exception); any other error stops
// capture, and the restart goes on with the table.
func (c *Capture) abandonIncrementalTable(err error) error {
	var pgErr *pgconn.PgError
	var unreadable unreadableError
	if !errors.As(err, &unreadable) &&
		(!errors.As(err, &pgErr) || !(strings.HasPrefix(pgErr.Code, "42") || strings.HasPrefix(pgErr.Code, "22"))) {
		return err
	}
	st := c.pub.incremental
	cur := st.Tables[0]
	c.log.Error("incremental snapshot of table abandoned: it cannot be read", "table", cur.Table, "filter", cur.Filter, "err", err)
	c.endIncrementalTable(IncrementalProgress{Table: cur.Table, Filter: cur.Filter, Reason: cur.Reason, Rows: cur.Rows,
		Estimate: cur.Estimate, Stopped: true})
	return c.pub.stateChanged()
}

// endIncrementalTable removes the current table from the state.
func (c *Capture) endIncrementalTable(p IncrementalProgress) {
	st, inc := c.pub.incremental, c.incr
	st.Tables = slices.Delete(st.Tables, 0, 1)
	if len(st.Tables) == 0 {
		c.pub.incremental = nil
	}
	inc.track, inc.inflight, inc.st = nil, nil, nil
	inc.ended = append(inc.ended, p)
	if len(inc.ended) > 100 {
		inc.ended = slices.Delete(inc.ended, 0, len(inc.ended)-100)
	}
	c.publishProgress()
}

// readIncrementalChunk reads the next chunk of cur and writes its high
// watermark, in one transaction whose snapshot is the chunk's low
// watermark.
func (c *Capture) readIncrementalChunk(ctx context.Context, conn *pgx.Conn, cur *IncrementalTable) error {
	inc := c.incr
	// The table's columns may have changed since the last chunk.
	st, _, _, err := c.incrementalTable(ctx, conn, cur.Table)
	if err != nil {
		return c.abandonIncrementalTable(err)
	}
	ch, err := c.queryChunk(ctx, conn, st, inc.keyOrder, cur)
	if err != nil {
		return c.abandonIncrementalTable(err)
	}
	inc.inflight = ch
	return nil
}

// chunkTimeout bounds the read of a chunk: the replication loop does not
// read the stream meanwhile. The SQLSTATE of a statement it ends is
// queryCanceled.
const (
	chunkTimeout  = 20 * time.Second
	queryCanceled = "57014"
)

// queryChunk reads the chunk of st after cur.After and writes its high
// watermark.
func (c *Capture) queryChunk(ctx context.Context, conn *pgx.Conn, st *snapshotTable, order []string, cur *IncrementalTable) (*chunkRead, error) {
	ch := &chunkRead{table: cur.Table, st: st,
		mark: fmt.Sprintf(`{"slot":%q,"table":%q,"chunk":"%016x"}`, c.cfg.Slot, cur.Table, rand.Uint64())}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin incremental snapshot chunk of %s: %w", cur.Table, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The replication loop waits for the chunk: PostgreSQL must not take
	// capture for gone (wal_sender_timeout, 60s by default).
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", chunkTimeout.Milliseconds())); err != nil {
		return nil, fmt.Errorf("incremental snapshot chunk of %s: %w", cur.Table, err)
	}
	var snapText string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snapText); err != nil {
		return nil, fmt.Errorf("incremental snapshot chunk of %s: %w", cur.Table, err)
	}
	if ch.snap, err = parseSnapshot(snapText); err != nil {
		return nil, err
	}
	src := st.rel.src
	cols := make([]string, len(src.Columns))
	index := map[string]int{}
	for i, col := range src.Columns {
		cols[i] = pgx.Identifier{col.Name}.Sanitize()
		index[col.Name] = i
	}
	keys, params := make([]string, len(order)), make([]string, len(order))
	keyIdx := make([]int, len(order))
	for i, k := range order {
		j, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("key column %s of %s is not among its columns", k, cur.Table)
		}
		keys[i], keyIdx[i], params[i] = cols[j], j, fmt.Sprintf("$%d", i+1)
	}
	var conds []string
	var args [][]byte
	if len(cur.After) == len(order) {
		conds = append(conds, fmt.Sprintf("(%s) > (%s)", strings.Join(keys, ", "), strings.Join(params, ", ")))
		for _, v := range cur.After {
			args = append(args, []byte(v))
		}
	}
	if cur.Filter != "" {
		conds = append(conds, "("+cur.Filter+")")
	}
	sql := fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), pgx.Identifier{st.table.Schema, st.table.Name}.Sanitize())
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(keys, ", "), c.cfg.IncrementalChunkRows)
	rr := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil)
	dec := newDecoder()
	for rr.NextRow() {
		vals := rr.Values()
		ch.last = make([]string, len(keyIdx))
		for i, j := range keyIdx {
			ch.last[i] = string(vals[j])
		}
		r := chunkRow{key: strings.Join(ch.last, "\x00")}
		r.row, r.bad = st.decode(dec, c.cfg.MaskSalt, vals)
		ch.rows = append(ch.rows, r)
	}
	if _, err := rr.Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == queryCanceled {
			return nil, unreadableError{fmt.Errorf("a chunk of %s took longer than %v to read (%w); index the columns of its filter, or choose one more rows satisfy",
				cur.Table, chunkTimeout, err)}
		}
		return nil, fmt.Errorf("incremental snapshot chunk of %s: %w", cur.Table, err)
	}
	ch.complete = len(ch.rows) < c.cfg.IncrementalChunkRows
	if len(ch.rows) == 0 {
		ch.last = cur.After
	}
	if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", WatermarkPrefix, ch.mark); err != nil {
		return nil, fmt.Errorf("write the high watermark of a chunk of %s: %w", cur.Table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit the incremental snapshot chunk of %s: %w", cur.Table, err)
	}
	return ch, nil
}

// watermarkOutput is a high watermark of an incremental snapshot chunk:
// a transactional logical decoding message of prefix WatermarkPrefix, in
// the transaction that commits at Commit.
type watermarkOutput struct {
	Content string
	Commit  change.LSN
}

func (watermarkOutput) isOutput() {}

// incrementalWatermark publishes the chunk whose high watermark streamed:
// its rows no newer change touched, as reads at the watermark's position,
// in one Kafka transaction with the checkpoint that records the chunk.
// Watermarks of other captures, or of chunks read before a restart, are
// ignored. An unavailable registry leaves nothing published and the chunk
// waiting: the replication loop calls again.
func (c *Capture) incrementalWatermark(ctx context.Context, o watermarkOutput) error {
	inc := c.incr
	if inc == nil || inc.inflight == nil || o.Content != inc.inflight.mark {
		return nil
	}
	ch := inc.inflight
	st := c.pub.incremental
	cur := &st.Tables[0]
	t := ch.st.table
	at := change.Position{CommitLSN: o.Commit}
	recs := make([]serde.Encoded, 0, len(ch.rows))
	var bad []chunkRow
	var newer int
	for _, r := range ch.rows {
		if inc.track.newer(r.key, ch.snap) {
			newer++ // a change the chunk's snapshot does not see streamed, or will
			continue
		}
		if r.bad != nil {
			bad = append(bad, r)
			continue
		}
		ev := c.readEvent(t, change.OpRead, r.row, change.SnapshotIncremental, at.CommitLSN)
		rec, err := c.enc.Encode(ctx, t, ev)
		var valueErr *serde.ValueError
		if errors.As(err, &valueErr) || errors.Is(err, serde.ErrSchemaRejected) {
			bad = append(bad, chunkRow{key: r.key, bad: &badRow{text: textRow(r.row), err: err}})
			continue
		}
		if err != nil {
			return fmt.Errorf("encode incremental snapshot row of %s: %w", t, err)
		}
		recs = append(recs, rec)
	}
	reads := len(recs)
	for _, r := range bad {
		raw := rawChange{Schema: t.Schema, Table: t.Name, Op: "r", After: r.bad.text}
		rec, err := c.deadLetter(t, at.CommitLSN, at, raw, r.bad.err)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	// The checkpoint committed with these records says the chunk is done.
	cur.After, cur.Rows = ch.last, cur.Rows+int64(reads)
	progress := IncrementalProgress{Table: cur.Table, Filter: cur.Filter, Reason: cur.Reason, Rows: cur.Rows, Estimate: cur.Estimate, Done: true}
	if ch.complete {
		c.endIncrementalTable(progress)
	}
	var err error
	if len(recs) > 0 {
		err = c.pub.produceChanges(ctx, at, recs, len(recs))
	} else {
		err = c.pub.stateChanged()
	}
	if err != nil {
		return err
	}
	c.metrics.incrementalRows.WithLabelValues(ch.table).Add(float64(reads))
	c.metrics.events.WithLabelValues(ch.table, change.OpRead.String()).Add(float64(reads))
	if inc.track != nil {
		inc.track.prune(ch.snap)
	}
	inc.inflight = nil
	c.log.Debug("incremental snapshot chunk published", "table", ch.table, "read", len(ch.rows), "published", reads,
		"newer_in_stream", newer, "dead_lettered", len(bad), "after", ch.last)
	switch {
	case ch.complete:
		c.log.Info("incremental snapshot of table finished", "table", ch.table, "rows", progress.Rows, "filter", progress.Filter)
	case time.Since(inc.lastLog) >= c.cfg.SnapshotProgressInterval:
		c.log.Info("incremental snapshot progress", "table", ch.table, "rows", cur.Rows, "estimated_total", cur.Estimate,
			"percent", percent(cur.Rows, cur.Estimate), "tables_pending", len(st.Tables))
		inc.lastLog = time.Now()
	}
	c.publishProgress()
	return nil
}

// observeChange notes that the transaction xid changed the row of raw in
// table t, if an incremental snapshot reads t.
func (c *Capture) observeChange(t *change.Table, xid uint32, raw rawChange) {
	if inc := c.incr; inc != nil && inc.track != nil && inc.track.table == t.String() {
		inc.track.observe(xid, raw.text())
	}
}

// publishProgress updates what IncrementalSnapshots reports.
func (c *Capture) publishProgress() {
	var list []IncrementalProgress
	if c.incr != nil {
		list = append(list, c.incr.ended...)
	}
	if st := c.pub.incremental; st != nil {
		for i, t := range st.Tables {
			list = append(list, IncrementalProgress{Table: t.Table, Filter: t.Filter, Reason: t.Reason, Rows: t.Rows,
				Estimate: t.Estimate, Running: i == 0 && c.incr != nil && c.incr.track != nil})
		}
		c.metrics.incrementalPending.Set(float64(len(st.Tables)))
	} else {
		c.metrics.incrementalPending.Set(0)
	}
	c.progress.mu.Lock()
	c.progress.list = list
	c.progress.mu.Unlock()
}

// keyTracker remembers which transaction last changed each key of a table
// while its incremental snapshot runs, for as long as a chunk's snapshot
// may not see that transaction.
type keyTracker struct {
	table string
	key   []string          // the key columns, in the order of the key index
	xids  map[string]uint32 // key → the transaction that last changed it
}

func newKeyTracker(table string, key []string) *keyTracker {
	return &keyTracker{table: table, key: key, xids: map[string]uint32{}}
}

// observe notes the keys of a change's before and after images.
func (k *keyTracker) observe(xid uint32, raw rawChange) {
	for _, vals := range []map[string]*string{raw.Before, raw.After} {
		if key, ok := k.keyOf(vals); ok {
			k.xids[key] = xid
		}
	}
}

// keyOf is the key of a row in text form, as chunkRow keys it.
func (k *keyTracker) keyOf(vals map[string]*string) (string, bool) {
	if vals == nil {
		return "", false
	}
	parts := make([]string, len(k.key))
	for i, col := range k.key {
		v := vals[col]
		if v == nil {
			return "", false
		}
		parts[i] = *v
	}
	return strings.Join(parts, "\x00"), true
}

// newer reports whether a transaction that s does not see changed key.
// A transaction that changed a key after another waited for that one's
// row lock, which it holds until it is visible: when the last one is
// visible to s, so are those before it.
func (k *keyTracker) newer(key string, s pgSnapshot) bool {
	xid, ok := k.xids[key]
	return ok && !s.visible(xid)
}

// prune forgets the changes of transactions that ended before s was taken:
// every later snapshot sees them.
func (k *keyTracker) prune(s pgSnapshot) {
	for key, xid := range k.xids {
		if s.full(xid) < s.xmin {
			delete(k.xids, key)
		}
	}
}

// pgSnapshot is an MVCC snapshot as pg_current_snapshot() shows it:
// transactions before xmin have ended, those from xmax on had not started,
// those in xip were running.
type pgSnapshot struct {
	xmin, xmax uint64
	xip        map[uint64]bool
}

// parseSnapshot parses pg_snapshot's text form, xmin:xmax:xip,xip.
func parseSnapshot(s string) (pgSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return pgSnapshot{}, fmt.Errorf("snapshot %q is not xmin:xmax:xip_list", s)
	}
	var snap pgSnapshot
	var err error
	if snap.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return pgSnapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
	}
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return pgSnapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
	}
	snap.xip = map[uint64]bool{}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			xid, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return pgSnapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
			}
			snap.xip[xid] = true
		}
	}
	return snap, nil
}

// full widens a 32-bit transaction id, as pgoutput sends them, to the
// 64-bit id of s's epoch closest to s.xmax.
func (s pgSnapshot) full(xid uint32) uint64 {
	return uint64(int64(s.xmax) + int64(int32(xid-uint32(s.xmax))))
}

// visible reports whether the transaction xid had ended when s was taken:
// s sees its changes if it committed.
func (s pgSnapshot) visible(xid uint32) bool {
	x := s.full(xid)
	return x < s.xmin || (x < s.xmax && !s.xip[x])
}

// fence holds an incremental snapshot's first chunk back until every
// transaction that was running when the table started has ended, or cannot
// commit before then (it is idle in its transaction, or prepared): one that
// committed before tracking began but was not yet visible would otherwise
// go unnoticed by the tracker and be invisible to a chunk.
type fence struct {
	waiting       map[uint64]bool // nil until the first poll
	next          time.Time       // when to poll again
	wait          time.Duration
	since, logged time.Time
}

func (f *fence) passed() bool { return f.waiting != nil && len(f.waiting) == 0 }

func (f *fence) xids() []uint64 {
	var out []uint64
	for x := range f.waiting {
		out = append(out, x)
	}
	slices.Sort(out)
	return out
}

// poll drops the transactions that ended or cannot commit yet; the first
// poll takes the running ones.
func (f *fence) poll(ctx context.Context, conn *pgx.Conn) error {
	var text string
	var idle []string
	err := conn.QueryRow(ctx, `SELECT pg_current_snapshot()::text, ARRAY(
		SELECT backend_xid::text FROM pg_stat_activity
		 WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') AND backend_xid IS NOT NULL
		UNION ALL SELECT transaction::text FROM pg_prepared_xacts)`).Scan(&text, &idle)
	if err != nil {
		return fmt.Errorf("read the running transactions: %w", err)
	}
	s, err := parseSnapshot(text)
	if err != nil {
		return err
	}
	if f.waiting == nil {
		f.waiting = map[uint64]bool{}
		for x := range s.xip {
			f.waiting[x] = true
		}
	}
	for x := range f.waiting {
		if x < s.xmin || (x < s.xmax && !s.xip[x]) {
			delete(f.waiting, x)
		}
	}
	for _, x := range idle {
		if xid, err := strconv.ParseUint(x, 10, 32); err == nil {
			delete(f.waiting, s.full(uint32(xid)))
		}
	}
	f.wait = min(max(2*f.wait, 20*time.Millisecond), time.Second)
	f.next = time.Now().Add(f.wait)
	return nil
}
