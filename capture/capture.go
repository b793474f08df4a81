package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is cdcflow's version, written to every envelope's source.version.
const Version = "0.1.0"

// HeartbeatPrefix is the prefix of the logical decoding messages capture
// writes as heartbeats.
const HeartbeatPrefix = "cdcflow_heartbeat"

// Capture streams committed changes of the configured tables from PostgreSQL
// to Kafka. Create it with [New] and start it with [Capture.Run].
type Capture struct {
	cfg Config
	enc *serde.Encoder
	log *slog.Logger

	want      map[string]bool      // captured tables, schema.table
	relations map[uint32]*relation // by relation id, as pgoutput announced them
	tables    []string             // the captured tables, schema.table, resolved from the patterns
	topics    map[string]bool      // topics known to exist
	dec       *decoder
	db        string
	streaming chan struct{} // closed once replication started

	kafka       *kgo.Client // the transactional producer, while Run runs
	pub         *publisher
	resume      change.Position // changes at or before it were published already
	ckpt        Checkpoint      // the checkpoint Run resumed from
	ckptFound   bool
	snapshotLSN map[string]change.LSN // per table: changes committed before it are in its snapshot

	skipped, deadLettered atomic.Int64
	metrics               *metrics
}

// Stats counts what a Capture did since it was built.
type Stats struct {
	// Skipped counts changes PostgreSQL sent again after a restart that
	// were already committed to Kafka.
	Skipped int64
	// DeadLettered counts changes sent to the dead-letter topic.
	DeadLettered int64
}

// Stats returns the counters. It is safe to call while Run runs.
func (c *Capture) Stats() Stats {
	return Stats{Skipped: c.skipped.Load(), DeadLettered: c.deadLettered.Load()}
}

// New returns a Capture that encodes with enc. It validates cfg but connects
// to nothing.
func New(cfg Config, enc *serde.Encoder) (*Capture, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Capture{
		cfg: cfg, enc: enc, log: cfg.Logger, want: map[string]bool{},
		relations: map[uint32]*relation{}, topics: map[string]bool{}, dec: newDecoder(),
		streaming: make(chan struct{}), metrics: newMetrics(cfg.Metrics, cfg.Slot),
	}, nil
}

// Run checks PostgreSQL and Kafka, makes sure the publication, the slot and
// the topics exist, resumes after the last committed checkpoint and streams
// changes until ctx ends or an error stops it. When ctx ends, Run commits the
// open Kafka transaction, confirms the slot up to it and returns nil; after
// an error it aborts the open transaction, whose changes the next Run
// publishes again.
func (c *Capture) Run(ctx context.Context) error {
	conn, err := connect(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if c.tables, err = resolveTables(ctx, conn, c.cfg.Tables, c.cfg.ExcludeTables); err != nil {
		return err
	}
	for _, t := range c.tables {
		c.want[t] = true
	}
	if err := preflight(ctx, conn, c.tables); err != nil {
		return err
	}
	if err := pingKafka(ctx, c.cfg); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&c.db); err != nil {
		return fmt.Errorf("read database name: %w", err)
	}
	if err := ensurePublication(ctx, conn, c.cfg.Publication, c.tables); err != nil {
		return err
	}
	if err := c.openKafka(ctx); err != nil {
		return err
	}
	defer c.kafka.Close()
	repl, err := connectReplication(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())
	start, exported, err := ensureSlot(ctx, conn, repl, c.cfg.Slot)
	if err != nil {
		return err
	}
	created := exported != ""
	if start > c.pub.durable {
		c.pub.complete, c.pub.durable = start, start
	}
	if tables, reason := c.snapshotPlan(created, c.ckpt, c.ckptFound); len(tables) > 0 {
		name, at := exported, start
		if !created {
			holder, n, a, err := exportSnapshot(ctx, c.cfg.DSN, c.cfg.Slot)
			if err != nil {
				return err
			}
			defer holder.Close(context.Background())
			name, at = n, a
		}
		c.log.Info("snapshot needed", "reason", reason, "tables", tables)
		if err := c.snapshot(ctx, conn, name, at, tables); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snapshot: %w; a restart goes on with the tables not finished", err)
		}
	}
	if c.cfg.Snapshot == SnapshotInitialOnly {
		c.log.Info("snapshot mode initial_only: not streaming")
		return nil
	}
	if err := c.startReplication(ctx, repl, start); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(c.streaming)
	c.log.Info("capture streaming", "slot", c.cfg.Slot, "slot_created", created, "from", start.String(),
		"resume_after", c.resume.String(), "publication", c.cfg.Publication, "tables", c.tables,
		"topic_prefix", c.cfg.TopicPrefix)
	return c.stream(ctx, conn, repl)
}

// objectInUse is the SQLSTATE of START_REPLICATION on a slot another
// connection holds.
const objectInUse = "55006"

// startReplication starts streaming from the slot at start. While another
// connection holds the slot (a capture killed a moment ago whose walsender
// lives on until PostgreSQL notices, or a second capture of the same slot),
// it retries every second for SlotBusyTimeout.
func (c *Capture) startReplication(ctx context.Context, repl *pgconn.PgConn, start change.LSN) error {
	opts := pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", c.cfg.Publication), "messages 'true'"},
	}
	deadline := time.Now().Add(c.cfg.SlotBusyTimeout)
	for logged := false; ; {
		err := pglogrepl.StartReplication(ctx, repl, c.cfg.Slot, pglogrepl.LSN(start), opts)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != objectInUse {
			if err != nil {
				return fmt.Errorf("start replication from slot %s: %w", c.cfg.Slot, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replication slot %s is still in use after %v (%s): stop the other capture of this slot, or end its connection with pg_terminate_backend(active_pid) from pg_replication_slots",
				c.cfg.Slot, c.cfg.SlotBusyTimeout, pgErr.Message)
		}
		if !logged {
			c.log.Warn("replication slot in use; waiting for it to be released", "slot", c.cfg.Slot, "detail", pgErr.Message, "timeout", c.cfg.SlotBusyTimeout)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Streaming returns a channel that is closed once the slot and the tables'
// topics exist and replication started: every transaction that commits
// afterwards is captured.
// A Capture runs once; the channel is never closed if Run fails before.
func (c *Capture) Streaming() <-chan struct{} { return c.streaming }

func pingKafka(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.KafkaOptions...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return fmt.Errorf("Kafka unreachable at %v: %v; check --kafka-brokers and that Kafka is running", cfg.Brokers, err)
	}
	return nil
}

// openKafka opens the transactional producer, fencing any earlier capture of
// the same slot (its open transaction is aborted), creates the topics and
// reads the checkpoint to resume after.
func (c *Capture) openKafka(ctx context.Context) error {
	txid := "cdcflow-capture-" + c.cfg.TopicPrefix + "-" + c.cfg.Slot
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.TransactionalID(txid),
		kgo.TransactionTimeout(time.Minute),
	}, c.cfg.KafkaOptions...)
	kafka, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	fail := func(err error) error { kafka.Close(); return err }
	if _, _, err := kafka.ProducerID(ctx); err != nil {
		return fail(fmt.Errorf("initialize transactional producer %s: %w; transactions need a broker with transaction.state.log.replication.factor <= its broker count", txid, err))
	}
	adm := kadm.NewClient(kafka)
	if err := ensureCheckpointTopic(ctx, adm, c.cfg.CheckpointTopic); err != nil {
		return fail(err)
	}
	topics := []string{}
	for _, t := range c.tables {
		schema, name, _ := splitTable(t)
		topics = append(topics, serde.Topic(c.cfg.TopicPrefix, schema, name))
	}
	if !c.cfg.NoTransactionTopic {
		topics = append(topics, serde.TransactionTopic(c.cfg.TopicPrefix))
	}
	topics = append(topics, serde.MessageTopic(c.cfg.TopicPrefix), c.cfg.DeadLetterTopic)
	for _, topic := range topics {
		if err := c.ensureTopic(ctx, adm, topic); err != nil {
			return fail(err)
		}
	}
	key := checkpointKey(c.cfg.TopicPrefix, c.cfg.Slot)
	ckpt, found, err := readCheckpoint(ctx, c.cfg.Brokers, c.cfg.CheckpointTopic, key)
	if err != nil {
		return fail(err)
	}
	if !found {
		c.log.Info("no checkpoint yet; publishing from the slot's position", "checkpoint_topic", c.cfg.CheckpointTopic, "key", key)
	}
	c.kafka, c.resume, c.ckpt, c.ckptFound = kafka, ckpt.Position, ckpt, found
	if ckpt.Snapshot != nil {
		c.snapshotLSN = ckpt.Snapshot.Tables
	}
	c.pub = newPublisher(kafka, c.cfg.CheckpointTopic, key, c.cfg.TransactionRecords, c.cfg.TransactionTime, ckpt)
	c.pub.committed = c.metrics.transactions.Inc
	return nil
}

// txState is the transaction being streamed.
type txState struct {
	xid      uint32
	commit   change.LSN
	time     time.Time
	index    uint32
	perTable map[string]int64
}

func (c *Capture) stream(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn) error {
	// Work on a message, once started, finishes even when ctx ends meanwhile
	// (a half-done Kafka commit would only be aborted and redone), unless it
	// hangs for 30s more; the loop then stops at its top.
	wctx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopWork := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancelWork) })
	defer stopWork()

	var tx *txState
	var sent change.LSN
	nextStatus, nextHeartbeat := time.Now(), time.Now()
	for {
		if ctx.Err() != nil {
			return c.shutdown(repl)
		}
		if err := c.pub.maybeCommit(wctx); err != nil {
			return c.stop(repl, err)
		}
		if !time.Now().Before(nextStatus) {
			if err := sendStatus(ctx, repl, c.pub.durable); err != nil {
				if ctx.Err() != nil {
					return c.shutdown(repl)
				}
				return err
			}
			c.metrics.confirmedLSN.Set(float64(c.pub.durable))
			if c.pub.durable != sent {
				c.log.Debug("confirmed position", "lsn", c.pub.durable.String())
				sent = c.pub.durable
			}
			nextStatus = time.Now().Add(c.cfg.StatusInterval)
		}
		if c.cfg.HeartbeatInterval > 0 && !time.Now().Before(nextHeartbeat) {
			if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, '')", HeartbeatPrefix); err != nil {
				if ctx.Err() != nil {
					return c.shutdown(repl)
				}
				return c.stop(repl, fmt.Errorf("write heartbeat: %w", err))
			}
			nextHeartbeat = time.Now().Add(c.cfg.HeartbeatInterval)
		}
		deadline := nextStatus
		if due := c.pub.began.Add(c.cfg.TransactionTime); c.pub.open && due.Before(deadline) {
			deadline = due
		}
		if c.cfg.HeartbeatInterval > 0 && nextHeartbeat.Before(deadline) {
			deadline = nextHeartbeat
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return c.shutdown(repl)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return c.stop(repl, fmt.Errorf("receive from replication slot %s: %w", c.cfg.Slot, err))
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			return c.stop(repl, fmt.Errorf("replication stream error: %s (SQLSTATE %s)", msg.Message, msg.Code))
		case *pgproto3.CopyData:
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return c.stop(repl, fmt.Errorf("parse keepalive: %w", err))
				}
				c.observeServer(change.LSN(ka.ServerWALEnd))
				if ka.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return c.stop(repl, fmt.Errorf("parse XLogData: %w", err))
				}
				c.observeServer(change.LSN(xld.ServerWALEnd))
				if tx, err = c.handle(wctx, conn, tx, xld); err != nil {
					return c.stop(repl, err)
				}
			}
		}
	}
}

// observeServer records the server's WAL end and how far capture trails it.
func (c *Capture) observeServer(end change.LSN) {
	if end == 0 {
		return
	}
	c.metrics.serverLSN.Set(float64(end))
	if end > c.pub.durable {
		c.metrics.lagBytes.Set(float64(end - c.pub.durable))
	} else {
		c.metrics.lagBytes.Set(0)
	}
}

// shutdown commits what was produced and confirms it before Run returns.
func (c *Capture) shutdown(repl *pgconn.PgConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.pub.commit(ctx); err != nil {
		c.log.Warn("commit on shutdown; the next start publishes those changes again", "err", err)
	}
	if err := sendStatus(ctx, repl, c.pub.durable); err != nil {
		c.log.Warn("confirm position on shutdown", "err", err)
	}
	c.log.Info("capture stopped", "confirmed", c.pub.durable.String(), "position", c.pub.last.String(), "skipped_already_published", c.skipped.Load(), "dead_lettered", c.deadLettered.Load())
	return nil
}

// stop aborts the open Kafka transaction after err and returns err: what
// was not committed is published again by the next start.
func (c *Capture) stop(repl *pgconn.PgConn, err error) error {
	if c.pub.open {
		err = c.pub.abort(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := sendStatus(ctx, repl, c.pub.durable); serr != nil {
		c.log.Warn("confirm position after error", "err", serr)
	}
	return err
}

func sendStatus(ctx context.Context, repl *pgconn.PgConn, lsn change.LSN) error {
	p := pglogrepl.LSN(lsn)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: p, WALFlushPosition: p, WALApplyPosition: p,
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

func (c *Capture) handle(ctx context.Context, conn *pgx.Conn, tx *txState, xld pglogrepl.XLogData) (*txState, error) {
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return tx, fmt.Errorf("parse pgoutput message at %s: %w", xld.WALStart, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		cols, err := relationColumns(ctx, conn, m)
		if err != nil {
			return tx, err
		}
		rel, err := newRelation(&c.cfg, &change.Table{Schema: m.Namespace, Name: m.RelationName, Columns: cols})
		if err != nil {
			return tx, err
		}
		c.relations[m.RelationID] = rel
	case *pglogrepl.BeginMessage:
		return &txState{xid: m.Xid, commit: change.LSN(m.FinalLSN), time: m.CommitTime,
			perTable: map[string]int64{}}, nil
	case *pglogrepl.CommitMessage:
		if tx == nil {
			return nil, fmt.Errorf("commit at %s without a transaction", m.CommitLSN)
		}
		if tx.index > 0 {
			if err := c.transactionRecord(ctx, tx, serde.TransactionEnd); err != nil {
				return nil, err
			}
			c.metrics.commitTime.Set(float64(tx.time.UnixMilli()) / 1000)
		}
		return nil, c.pub.sourceCommitted(ctx, change.LSN(m.TransactionEndLSN))
	case *pglogrepl.LogicalDecodingMessage:
		return tx, c.message(ctx, tx, m)
	case *pglogrepl.InsertMessage:
		return tx, c.change(ctx, tx, xld, m.RelationID, change.OpCreate, nil, 0, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return tx, c.change(ctx, tx, xld, m.RelationID, change.OpUpdate, m.OldTuple, m.OldTupleType, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return tx, c.change(ctx, tx, xld, m.RelationID, change.OpDelete, m.OldTuple, m.OldTupleType, nil)
	}
	return tx, nil
}

func (c *Capture) change(ctx context.Context, tx *txState, xld pglogrepl.XLogData, relID uint32, op change.Op,
	oldTuple *pglogrepl.TupleData, oldType uint8, newTuple *pglogrepl.TupleData) error {
	if tx == nil {
		return fmt.Errorf("change at %s outside a transaction", xld.WALStart)
	}
	rel, ok := c.relations[relID]
	if !ok {
		return fmt.Errorf("change at %s to relation %d that pgoutput never described", xld.WALStart, relID)
	}
	t := rel.pub
	if !c.want[t.String()] {
		return nil // published, but not captured by this configuration
	}
	oldTuple, newTuple = rel.tuple(c.cfg.MaskSalt, oldTuple), rel.tuple(c.cfg.MaskSalt, newTuple)
	lsn := change.LSN(xld.WALStart)
	raw := rawChange{Schema: t.Schema, Table: t.Name, Op: op.String(), Before: rawTuple(t, oldTuple), After: rawTuple(t, newTuple)}
	after, err := c.dec.row(t, newTuple)
	if err != nil {
		return c.deadLetter(ctx, tx, t, lsn, raw, err)
	}
	var before change.Row
	switch oldType {
	case pglogrepl.UpdateMessageTupleTypeOld: // REPLICA IDENTITY FULL
		before, err = c.dec.row(t, oldTuple)
	case pglogrepl.UpdateMessageTupleTypeKey: // the key changed, or a delete
		before, err = c.dec.keyRow(t, oldTuple)
	}
	if err != nil {
		return c.deadLetter(ctx, tx, t, lsn, raw, err)
	}
	// An unchanged TOASTed value is left out of the new row; with a full
	// before image it is known.
	for col, v := range after {
		if _, ok := v.(change.Unavailable); ok && oldType == pglogrepl.UpdateMessageTupleTypeOld {
			after[col] = before[col]
		}
	}
	if op == change.OpUpdate && before != nil && keyChanged(t, before, after) {
		// Debezium's way: a delete of the old key (and its tombstone), then
		// a create of the new one.
		if err := c.emit(ctx, tx, t, lsn, change.OpDelete, before, nil, raw); err != nil {
			return err
		}
		return c.emit(ctx, tx, t, lsn, change.OpCreate, nil, after, raw)
	}
	return c.emit(ctx, tx, t, lsn, op, before, after, raw)
}

func keyChanged(t *change.Table, before, after change.Row) bool {
	for _, col := range t.KeyColumns() {
		if fmt.Sprint(before[col.Name]) != fmt.Sprint(after[col.Name]) {
			return true
		}
	}
	return false
}

// txID is a transaction's id in envelopes and transaction records.
func (tx *txState) id() string { return fmt.Sprintf("%d:%d", tx.xid, uint64(tx.commit)) }

// emit publishes one change event of tx (and its tombstone after a delete),
// unless a previous run published it already. The first event of a
// transaction is preceded by its BEGIN record.
func (c *Capture) emit(ctx context.Context, tx *txState, t *change.Table, lsn change.LSN, op change.Op, before, after change.Row, raw rawChange) error {
	if err := c.next(ctx, tx, t.String()); err != nil {
		return err
	}
	ev := &change.Event{
		Op: op, Before: before, After: after,
		Source: change.Source{
			Version: Version, Connector: "postgresql", Name: c.cfg.TopicPrefix,
			TsMs: tx.time.UnixMilli(), Snapshot: "false", DB: c.db,
			Sequence: change.SequenceFor(tx.commit, lsn), TsUs: tx.time.UnixMicro(), TsNs: tx.time.UnixNano(),
			Schema: t.Schema, Table: t.Name, TxID: int64(tx.xid), LSN: lsn,
		},
		Transaction: &change.Transaction{
			ID: tx.id(), TotalOrder: int64(tx.index), DataCollectionOrder: tx.perTable[t.String()],
		},
		TsMs:     time.Now().UnixMilli(),
		Position: change.Position{CommitLSN: tx.commit, Index: tx.index},
	}
	if ev.Position.Compare(c.resume) <= 0 {
		c.countSkipped() // committed to Kafka before a restart
		return nil
	}
	if tx.commit < c.snapshotLSN[t.String()] {
		return nil // committed before the table's snapshot, which holds it
	}
	rec, err := c.enc.Encode(ctx, t, ev)
	var valueErr *serde.ValueError
	if errors.As(err, &valueErr) || errors.Is(err, serde.ErrSchemaRejected) {
		return c.publishDeadLetter(ctx, t, lsn, ev.Position, raw, err)
	}
	if err != nil {
		return fmt.Errorf("encode change at %s to %s: %w", lsn, t, err)
	}
	records := []serde.Encoded{rec}
	c.metrics.events.WithLabelValues(t.String(), op.String()).Inc()
	if op == change.OpDelete && !c.cfg.NoTombstones {
		tomb, err := c.enc.Tombstone(ctx, t, ev)
		if err != nil {
			return fmt.Errorf("encode tombstone at %s to %s: %w", lsn, t, err)
		}
		records = append(records, tomb)
	}
	return c.pub.produce(ctx, ev.Position, records)
}

// message publishes a logical decoding message to <prefix>.message, unless it
// is a heartbeat or its prefix is not selected. A transactional message is a
// change of its transaction; a non-transactional one stands alone at its LSN.
func (c *Capture) message(ctx context.Context, tx *txState, m *pglogrepl.LogicalDecodingMessage) error {
	if m.Prefix == HeartbeatPrefix || (len(c.cfg.MessagePrefixes) > 0 && !slices.Contains(c.cfg.MessagePrefixes, m.Prefix)) {
		return nil
	}
	lsn := change.LSN(m.LSN)
	msg := &serde.Message{Prefix: m.Prefix, Content: m.Content, TsMs: time.Now().UnixMilli(),
		Source: change.Source{Version: Version, Connector: "postgresql", Name: c.cfg.TopicPrefix,
			Snapshot: "false", DB: c.db, LSN: lsn}}
	if m.Transactional && tx != nil {
		if err := c.next(ctx, tx, ""); err != nil { // a message counts towards its transaction, in no table
			return err
		}
		msg.Position = change.Position{CommitLSN: tx.commit, Index: tx.index}
		msg.Source.TsMs, msg.Source.TsUs, msg.Source.TsNs = tx.time.UnixMilli(), tx.time.UnixMicro(), tx.time.UnixNano()
		msg.Source.TxID, msg.Source.Sequence = int64(tx.xid), change.SequenceFor(tx.commit, lsn)
		msg.Transaction = &change.Transaction{ID: tx.id(), TotalOrder: int64(tx.index), DataCollectionOrder: tx.perTable[""]}
	} else {
		msg.Position = change.Position{CommitLSN: lsn}
		msg.Source.Sequence = change.SequenceFor(lsn, lsn)
		msg.Source.TsMs = msg.TsMs
	}
	if msg.Position.Compare(c.resume) <= 0 {
		c.countSkipped()
		return nil
	}
	rec, err := c.enc.EncodeMessage(ctx, msg)
	if err != nil {
		return fmt.Errorf("encode logical decoding message at %s: %w", lsn, err)
	}
	return c.pub.produce(ctx, msg.Position, []serde.Encoded{rec})
}

func (c *Capture) countSkipped() {
	c.skipped.Add(1)
	c.metrics.skipped.Inc()
}

// next counts one more event of table in tx ("" for messages); the transaction's first event
// is preceded by its BEGIN record.
func (c *Capture) next(ctx context.Context, tx *txState, table string) error {
	tx.index++
	tx.perTable[table]++
	if tx.index == 1 {
		return c.transactionRecord(ctx, tx, serde.TransactionBegin)
	}
	return nil
}

// rawChange is a change in PostgreSQL's text form: what the dead-letter
// topic keeps of a change capture could not encode.
type rawChange struct {
	Schema   string             `json:"schema"`
	Table    string             `json:"table"`
	Op       string             `json:"op"`
	Before   map[string]*string `json:"before"`
	After    map[string]*string `json:"after"`
	Position string             `json:"position"`
	LSN      string             `json:"lsn"`
	Error    string             `json:"error"`
}

func rawTuple(t *change.Table, tuple *pglogrepl.TupleData) map[string]*string {
	if tuple == nil {
		return nil
	}
	out := make(map[string]*string, len(tuple.Columns))
	for i, col := range tuple.Columns {
		if i >= len(t.Columns) {
			break
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			out[t.Columns[i].Name] = nil
		case pglogrepl.TupleDataTypeToast:
			v := change.UnavailablePlaceholder
			out[t.Columns[i].Name] = &v
		default:
			v := string(col.Data)
			out[t.Columns[i].Name] = &v
		}
	}
	return out
}

// deadLetter counts a change that could not be decoded as an event of tx
// and publishes it to the dead-letter topic.
func (c *Capture) deadLetter(ctx context.Context, tx *txState, t *change.Table, lsn change.LSN, raw rawChange, cause error) error {
	if err := c.next(ctx, tx, t.String()); err != nil {
		return err
	}
	pos := change.Position{CommitLSN: tx.commit, Index: tx.index}
	if pos.Compare(c.resume) <= 0 {
		c.countSkipped()
		return nil
	}
	return c.publishDeadLetter(ctx, t, lsn, pos, raw, cause)
}

// publishDeadLetter writes a change capture cannot encode to the dead-letter
// topic, in the same Kafka transaction as the changes around it: the row in
// PostgreSQL's text form as JSON, the error and the source position in
// headers. Capture goes on with the next change.
func (c *Capture) publishDeadLetter(ctx context.Context, t *change.Table, lsn change.LSN, pos change.Position, raw rawChange, cause error) error {
	raw.Position, raw.LSN, raw.Error = pos.String(), lsn.String(), cause.Error()
	value, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	c.deadLettered.Add(1)
	c.metrics.deadLetters.WithLabelValues(t.String()).Inc()
	c.log.Warn("change sent to the dead-letter topic", "table", t.String(), "position", pos.String(), "lsn", lsn.String(),
		"topic", c.cfg.DeadLetterTopic, "err", cause)
	return c.pub.produce(ctx, pos, []serde.Encoded{{
		Topic: c.cfg.DeadLetterTopic, Key: []byte(t.String()), Value: value,
		Headers: []serde.Header{
			{Key: "cdcflow.error", Value: []byte(cause.Error())},
			{Key: "cdcflow.position", Value: []byte(pos.String())},
			{Key: "cdcflow.lsn", Value: []byte(lsn.String())},
			{Key: "cdcflow.table", Value: []byte(t.String())},
			{Key: "cdcflow.topic", Value: []byte(serde.Topic(c.cfg.TopicPrefix, t.Schema, t.Name))},
		},
	}})
}

// The positions of a transaction's BEGIN and END records: before its first
// and after its last change, so that a restart skips them like changes.
const (
	beginIndex = 0
	endIndex   = ^uint32(0)
)

// transactionRecord publishes tx's BEGIN or END record to the transaction
// topic, unless a previous run did.
func (c *Capture) transactionRecord(ctx context.Context, tx *txState, status serde.TransactionStatus) error {
	if c.cfg.NoTransactionTopic {
		return nil
	}
	pos := change.Position{CommitLSN: tx.commit, Index: beginIndex}
	rec := serde.TransactionRecord{Status: status, ID: tx.id(), TsMs: tx.time.UnixMilli()}
	if status == serde.TransactionEnd {
		pos.Index = endIndex
		rec.EventCount = int64(tx.index)
		for _, name := range slices.Sorted(maps.Keys(tx.perTable)) {
			if name == "" {
				continue // logical decoding messages
			}
			rec.DataCollections = append(rec.DataCollections, serde.DataCollectionCount{DataCollection: name, EventCount: tx.perTable[name]})
		}
	}
	if pos.Compare(c.resume) <= 0 {
		return nil
	}
	enc, err := c.enc.EncodeTransaction(ctx, rec)
	if err != nil {
		return fmt.Errorf("encode transaction %s record of %s: %w", status, rec.ID, err)
	}
	return c.pub.produce(ctx, pos, []serde.Encoded{enc})
}

// ensureTopic creates topic with the broker's default partitions and
// replication unless it exists.
func (c *Capture) ensureTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	if c.topics[topic] {
		return nil
	}
	resp, err := adm.CreateTopic(ctx, -1, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	c.topics[topic] = true
	return nil
}
