package capture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrSlotLost marks the errors of a replication slot that is gone, or that
// PostgreSQL invalidated, while capture's checkpoint says it streamed from
// it: the changes committed since are in no slot. Run stops with it unless
// the snapshot mode is SnapshotWhenNeeded, which recovers (see Config.Snapshot).
var ErrSlotLost = errors.New("replication slot lost")

// SlotLoss records, in the checkpoint, a recovery from the loss of the slot
// under way.
type SlotLoss struct {
	Reason string `json:"reason"`
	// Confirmed is how far the lost slot was confirmed: the changes after
	// it are read again from the tables.
	Confirmed change.LSN `json:"confirmed_lsn"`
	Found     time.Time  `json:"found"`
}

// failoverVersion is the first PostgreSQL (server_version_num) with
// failover slots.
const failoverVersion = 170000

// slotInfo is what pg_replication_slots says of a slot.
type slotInfo struct {
	exists    bool
	plugin    string
	confirmed change.LSN
	activePID *int32
	invalid   string // why PostgreSQL invalidated it; empty while it is usable
	failover  bool
}

// serverVersion returns PostgreSQL's server_version_num.
func serverVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		return 0, fmt.Errorf("read server_version_num: %w", err)
	}
	return strconv.Atoi(v)
}

// slotQuery selects what inspectSlot reads, with the columns of the
// server's version: invalidation_reason and failover are PostgreSQL 17's,
// conflicting 16's; wal_status 'lost' is how 13 and later tell a slot whose
// WAL was removed.
func slotQuery(version int) string {
	invalid, failover := `CASE WHEN wal_status = 'lost' THEN 'wal_removed' END`, "false"
	switch {
	case version >= failoverVersion:
		invalid, failover = `COALESCE(invalidation_reason, `+invalid+`)`, "failover"
	case version >= 160000:
		invalid = `CASE WHEN conflicting THEN 'rows_removed' WHEN wal_status = 'lost' THEN 'wal_removed' END`
	}
	return `SELECT plugin, confirmed_flush_lsn::text, active_pid, ` + invalid + `, ` + failover + `
		FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`
}

// inspectSlot reads the slot's state.
func inspectSlot(ctx context.Context, conn *pgx.Conn, slot string, version int) (slotInfo, error) {
	var info slotInfo
	var confirmed, invalid *string
	err := conn.QueryRow(ctx, slotQuery(version), slot).Scan(&info.plugin, &confirmed, &info.activePID, &invalid, &info.failover)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotInfo{}, nil
	}
	if err != nil {
		return slotInfo{}, fmt.Errorf("look up replication slot %s: %w", slot, err)
	}
	info.exists = true
	if invalid != nil {
		info.invalid = *invalid
	}
	if confirmed != nil {
		if info.confirmed, err = change.ParseLSN(*confirmed); err != nil {
			return slotInfo{}, err
		}
	}
	return info, nil
}

// openSlot returns the position to stream from, creating the slot if it
// does not exist; a new slot comes with the name of a snapshot it exported,
// valid while repl stays idle. A slot that is gone while a checkpoint
// exists, or that PostgreSQL invalidated, is an ErrSlotLost, except in
// snapshot mode when_needed: then openSlot recovers (recoverSlot) and says
// so with recovered.
func (c *Capture) openSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, version int) (start change.LSN, exported string, recovered bool, err error) {
	slot := c.cfg.Slot
	info, err := inspectSlot(ctx, conn, slot, version)
	if err != nil {
		return 0, "", false, err
	}
	if info.exists && info.plugin != "pgoutput" {
		return 0, "", false, fmt.Errorf("replication slot %s uses plugin %s; capture needs pgoutput: drop the slot or set another slot name", slot, info.plugin)
	}
	failover := c.cfg.SlotFailover && version >= failoverVersion
	if c.cfg.SlotFailover && !failover {
		c.log.Warn("failover slots need PostgreSQL 17; using an ordinary slot", "slot", slot, "server_version_num", version)
	}
	var reason string
	switch {
	case c.pub.slotLost != nil:
		reason = "capture was recovering from its loss (" + c.pub.slotLost.Reason + ") when it stopped"
	case info.exists && info.invalid != "":
		reason = fmt.Sprintf("PostgreSQL invalidated it (%s)", info.invalid)
	case !info.exists && c.ckptFound:
		reason = "it no longer exists"
	}
	if reason != "" {
		if c.cfg.Snapshot != SnapshotWhenNeeded {
			return 0, "", false, c.slotLostError(reason, info)
		}
		start, err := c.recoverSlot(ctx, conn, repl, version, info, reason, failover)
		return start, "", true, err
	}
	if !info.exists {
		start, exported, err := createSlot(ctx, repl, slot, failover)
		return start, exported, false, err
	}
	if failover && !info.failover {
		sql := fmt.Sprintf("ALTER_REPLICATION_SLOT %s (FAILOVER true)", pgx.Identifier{slot}.Sanitize())
		if _, err := repl.Exec(ctx, sql).ReadAll(); err != nil {
			return 0, "", false, fmt.Errorf("%s: %w", sql, err)
		}
		c.log.Info("replication slot is now a failover slot", "slot", slot)
	}
	return info.confirmed, "", false, nil
}

// slotLostError says that the slot is lost and what to do.
func (c *Capture) slotLostError(reason string, info slotInfo) error {
	hint := ""
	if info.invalid == "wal_removed" {
		hint = " (it retained more WAL than max_slot_wal_keep_size allows: raise that setting, or keep capture running)"
	}
	drop := ""
	if info.exists {
		drop = "drop it, "
	}
	return fmt.Errorf("%w: replication slot %s: %s%s, but capture's checkpoint (key %s in topic %s) says it streamed from it up to %s: "+
		"the changes committed since are in no slot. Set the snapshot mode to when_needed to %screate a new slot and read every "+
		"captured table again with an incremental snapshot while streaming (rows deleted meanwhile are found by comparing the "+
		"tables' keys with those in Kafka); or set another slot name to start over with a full snapshot",
		ErrSlotLost, c.cfg.Slot, reason, hint, checkpointKey(c.cfg.TopicPrefix, c.cfg.Slot), c.cfg.CheckpointTopic,
		c.ckpt.Confirm, drop)
}

// explainStreamError turns an error that ended streaming into an
// ErrSlotLost when the slot is gone or invalidated by then (an operator
// dropped it, PostgreSQL invalidated it and ended the walsender).
func (c *Capture) explainStreamError(ctx context.Context, conn *pgx.Conn, version int, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, errRestart) {
		return err
	}
	info, ierr := inspectSlot(ctx, conn, c.cfg.Slot, version)
	switch {
	case ierr != nil:
		return err
	case !info.exists:
		return fmt.Errorf("%w: replication slot %s was dropped while capture streamed from it (%v)", ErrSlotLost, c.cfg.Slot, err)
	case info.invalid != "":
		return fmt.Errorf("%w: PostgreSQL invalidated replication slot %s (%s) while capture streamed from it (%v)", ErrSlotLost, c.cfg.Slot, info.invalid, err)
	}
	return err
}

// recoverSlot recovers from the loss of the slot: it records the loss in
// the checkpoint (a restart then starts the recovery over), drops what is
// left of the slot and creates a new one, publishes a delete for each row
// Kafka holds that the tables no longer held when the new slot was
// created (deleted while no slot recorded it), and plans an incremental
// snapshot of every captured table, which capture reads while it streams
// from the new slot. It returns the new slot's consistent point.
func (c *Capture) recoverSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, version int, info slotInfo, reason string, failover bool) (change.LSN, error) {
	slot := c.cfg.Slot
	c.log.Warn("replication slot lost: capture creates a new one, publishes the deletes it cannot show, then reads every table again while it streams",
		"slot", slot, "reason", reason, "checkpoint_confirmed", c.ckpt.Confirm.String())
	if c.pub.slotLost == nil {
		c.pub.slotLost = &SlotLoss{Reason: reason, Confirmed: c.ckpt.Confirm, Found: time.Now().UTC()}
		if err := c.pub.stateChanged(); err != nil {
			return 0, err
		}
		if err := c.pub.commit(ctx); err != nil {
			return 0, fmt.Errorf("record the loss of slot %s in the checkpoint: %w", slot, err)
		}
	}
	if info.exists {
		// PostgreSQL ends the walsender of a slot it invalidates; it may not
		// be gone yet.
		for deadline := time.Now().Add(c.cfg.SlotBusyTimeout); info.activePID != nil; {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("replication slot %s is lost (%s) but still in use by process %d after %v: stop it (pg_terminate_backend(%d))",
					slot, reason, *info.activePID, c.cfg.SlotBusyTimeout, *info.activePID)
			}
			sleep(ctx, time.Second)
			var err error
			if info, err = inspectSlot(ctx, conn, slot, version); err != nil {
				return 0, err
			}
		}
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
			return 0, fmt.Errorf("drop lost replication slot %s: %w", slot, err)
		}
	}
	start, exported, err := createSlot(ctx, repl, slot, failover)
	if err != nil {
		return 0, err
	}
	sconn, err := c.snapshotConn(ctx, exported)
	if err != nil {
		return 0, err
	}
	defer sconn.Close(context.WithoutCancel(ctx))
	deletes := 0
	for _, table := range c.tables {
		n, err := c.publishGapDeletes(ctx, sconn, table, start)
		if err != nil {
			return 0, err
		}
		deletes += n
	}
	snap := c.pub.snapshot
	if snap == nil {
		snap = &SnapshotState{Tables: map[string]change.LSN{}}
	}
	snap.Pending = nil
	inc := &IncrementalState{}
	for _, t := range c.tables {
		snap.Tables[t] = start
		inc.Tables = append(inc.Tables, IncrementalTable{Table: t, Reason: "slot lost"})
	}
	c.pub.snapshot, c.pub.incremental, c.pub.slotLost = snap, inc, nil
	if err := c.pub.stateChanged(); err != nil {
		return 0, err
	}
	if err := c.pub.commit(ctx); err != nil {
		return 0, fmt.Errorf("commit the recovery of slot %s: %w", slot, err)
	}
	c.log.Info("new replication slot created; the tables are read again while capture streams", "slot", slot, "at", start.String(),
		"deletes_published", deletes, "tables", c.tables)
	return start, nil
}

// publishGapDeletes publishes a delete (and its tombstone) at position
// (at, 0) for every row of table that Kafka holds and that the snapshot of
// sconn, taken where the new slot starts, does not: a row deleted while no
// slot recorded it. It compares keys as they are encoded with the table's
// current key schema. It returns how many it published.
func (c *Capture) publishGapDeletes(ctx context.Context, sconn *pgx.Conn, table string, at change.LSN) (int, error) {
	var n int
	err := c.waitForRegistry(ctx, func() error {
		var err error
		n, err = c.gapDeletes(ctx, sconn, table, at)
		return err
	})
	return n, err
}

func (c *Capture) gapDeletes(ctx context.Context, sconn *pgx.Conn, table string, at change.LSN) (int, error) {
	schema, name, _ := splitTable(table)
	src, _, err := tableColumns(ctx, sconn, schema, name)
	if err != nil {
		return 0, err
	}
	rel, err := newRelation(&c.cfg, src)
	if err != nil {
		return 0, err
	}
	t := rel.pub
	encodeKey := func(row change.Row) (string, error) {
		rec, err := c.enc.Tombstone(ctx, t, &change.Event{Op: change.OpDelete, Before: row})
		return string(rec.Key), err
	}

	// The keys Kafka holds a live row for.
	dec := c.enc.Decoder()
	topic := serde.Topic(c.cfg.TopicPrefix, schema, name)
	live := map[string]bool{}
	current, undecodable := -1, 0
	var scanErr error
	err = scanTopic(ctx, c.cfg.Brokers, c.cfg.KafkaOptions, topic, func(r *kgo.Record) {
		if scanErr != nil {
			return
		}
		key := string(r.Key)
		if id, _, err := serde.SplitWire(r.Key); err != nil || id != current {
			row, err := dec.DecodeKey(ctx, r.Key)
			if errors.Is(err, serde.ErrRegistryUnavailable) {
				scanErr = err
				return
			}
			if err != nil {
				undecodable++
				return
			}
			if key, scanErr = encodeKey(row); scanErr != nil {
				return
			}
			current, _, _ = serde.SplitWire([]byte(key))
		}
		alive := r.Value != nil
		if alive && c.cfg.NoTombstones {
			ev, err := dec.DecodeEvent(ctx, r.Value)
			if err != nil {
				scanErr = fmt.Errorf("decode %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
				return
			}
			alive = ev.Op != change.OpDelete
		}
		live[key] = alive
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return 0, fmt.Errorf("read the keys of topic %s: %w", topic, err)
	}
	if undecodable > 0 {
		c.log.Warn("records whose key capture cannot decode are left out of the comparison with the table", "topic", topic, "records", undecodable)
	}
	maps.DeleteFunc(live, func(_ string, alive bool) bool { return !alive })
	kafkaRows := len(live)

	// Less the keys the table holds.
	key := t.KeyColumns()
	cols := make([]string, len(key))
	for i, col := range key {
		cols[i] = pgx.Identifier{col.Name}.Sanitize()
	}
	rr := sconn.PgConn().ExecParams(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "),
		pgx.Identifier{schema, name}.Sanitize()), nil, nil, nil, nil)
	pgdec := newDecoder()
	for rr.NextRow() && len(live) > 0 {
		row := make(change.Row, len(key))
		for i, col := range key {
			v, err := pgdec.value(col, string(rr.Values()[i]))
			if err != nil {
				rr.Close()
				return 0, fmt.Errorf("key of %s: %w", table, err)
			}
			row[col.Name] = v
		}
		k, err := encodeKey(row)
		if err != nil {
			rr.Close()
			return 0, err
		}
		delete(live, k)
	}
	if _, err := rr.Close(); err != nil {
		return 0, fmt.Errorf("read the keys of %s: %w", table, err)
	}

	// What is left was deleted while no slot recorded it.
	for _, k := range slices.Sorted(maps.Keys(live)) {
		row, err := dec.DecodeKey(ctx, []byte(k))
		if err != nil {
			return 0, err
		}
		ev := c.readEvent(t, change.OpDelete, row, change.SnapshotIncremental, at)
		rec, err := c.enc.Encode(ctx, t, ev)
		if err != nil {
			return 0, fmt.Errorf("encode the delete of a row of %s: %w", table, err)
		}
		recs := []serde.Encoded{rec}
		if !c.cfg.NoTombstones {
			tomb, err := c.enc.Tombstone(ctx, t, ev)
			if err != nil {
				return 0, fmt.Errorf("encode the tombstone of a row of %s: %w", table, err)
			}
			recs = append(recs, tomb)
		}
		// At (at, 0), where the new slot starts; the streaming position
		// stays where it is, as for snapshot reads: a transaction that
		// commits exactly at the slot's start must not be skipped.
		if err := c.pub.produce(ctx, c.pub.last, recs); err != nil {
			return 0, err
		}
		c.metrics.events.WithLabelValues(table, change.OpDelete.String()).Inc()
	}
	if err := c.pub.commit(ctx); err != nil {
		return 0, err
	}
	c.log.Info("rows deleted while the slot was lost", "table", table, "rows_in_kafka", kafkaRows, "deleted", len(live))
	return len(live), nil
}
