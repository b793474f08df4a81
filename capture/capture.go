package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

	tables        []string        // the captured tables, schema.table, resolved from the patterns
	topics        map[string]bool // topics known to exist
	partitions    map[string]int  // partitions of the topics truncates went to
	db            string
	streaming     chan struct{} // closed once replication started
	streamingOnce sync.Once

	kafka     *kgo.Client // the transactional producer, while Run runs
	pub       *publisher
	resume    change.Position // changes at or before it were published already
	ckpt      Checkpoint      // the checkpoint Run resumed from
	ckptFound bool

	incr     *incremental // while Run streams
	progress progressBoard

	skipped, deadLettered atomic.Int64
	metrics               *metrics
	ctl                   control
	refresh               tableRefresh
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
	c := &Capture{
		cfg: cfg, enc: enc, log: cfg.Logger, topics: map[string]bool{},
		streaming: make(chan struct{}), metrics: newMetrics(cfg.Metrics, cfg.Slot),
	}
	progress := cfg.SnapshotProgress // Status reports the progress too
	c.cfg.SnapshotProgress = func(done, total int64) {
		c.ctl.snapshotProgress(done, total)
		if progress != nil {
			progress(done, total)
		}
	}
	return c, nil
}

// Run checks PostgreSQL and Kafka, makes sure the publication, the slot and
// the topics exist, resumes after the last committed checkpoint and streams
// changes until ctx ends or an error stops it. When ctx ends, Run commits the
// open Kafka transaction, confirms the slot up to it and returns nil; after
// an error it aborts the open transaction, whose changes the next Run
// publishes again. Asked to (Restart), or when a table of a pattern of
// Config.Tables appears, it restarts in place: see [Capture.Restart].
//
// A slot that is gone, or that PostgreSQL invalidated, while a checkpoint
// exists stops Run with an error wrapping ErrSlotLost, unless the snapshot
// mode is SnapshotWhenNeeded: then Run creates a new slot and goes on
// (see SnapshotWhenNeeded), also when the slot is lost while it streams.
func (c *Capture) Run(ctx context.Context) error {
	c.ctl.observe(func(ctl *control) { ctl.running, ctl.phase = true, PhaseStarting })
	var err error
	for {
		err = c.run(ctx)
		if !errors.Is(err, ErrSlotLost) || c.cfg.Snapshot != SnapshotWhenNeeded || ctx.Err() != nil {
			break
		}
		c.log.Warn("replication slot lost while capture streamed; starting over with a new slot", "slot", c.cfg.Slot, "err", err)
	}
	c.ctl.finished(err)
	return err
}

func (c *Capture) run(ctx context.Context) error {
	conn, err := connect(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if c.tables, err = resolveTables(ctx, conn, c.cfg.Tables, c.cfg.ExcludeTables); err != nil {
		return err
	}
	published := c.tables
	if c.cfg.SignalTable != "" {
		schema, table, _ := splitTable(c.cfg.SignalTable)
		signals := schema + "." + table
		if c.tables = slices.DeleteFunc(c.tables, func(t string) bool { return t == signals }); len(c.tables) == 0 {
			return fmt.Errorf("no table to capture: the tables %v are the signal table %s only", c.cfg.Tables, signals)
		}
		if err := ensureSignalTable(ctx, conn, signals); err != nil {
			return err
		}
		published = append(slices.Clone(c.tables), signals)
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
	version, err := serverVersion(ctx, conn)
	if err != nil {
		return err
	}
	if err := ensurePublication(ctx, conn, c.cfg.Publication, published); err != nil {
		return err
	}
	if err := c.openKafka(ctx); err != nil {
		return err
	}
	defer c.kafka.Close()
	c.ctl.observe(func(ctl *control) { ctl.tables, ctl.committed = slices.Clone(c.tables), c.resume })
	for {
		err := c.replicate(ctx, conn, version)
		if !errors.Is(err, errRestart) {
			return err
		}
		if err := c.reload(ctx, conn); err != nil {
			return err
		}
	}
}

// replicate opens the replication connection, reads the snapshot the slot
// or the checkpoint calls for, and streams until ctx ends, an error stops it
// or it returns errRestart.
func (c *Capture) replicate(ctx context.Context, conn *pgx.Conn, version int) error {
	repl, err := connectReplication(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer repl.Close(context.Background())
	start, exported, recovered, err := c.openSlot(ctx, conn, repl, version)
	if err != nil {
		return err
	}
	// A recovered slot is new, but its snapshot is planned: an incremental
	// one (snapshotPlan finds nothing left to do).
	created := exported != ""
	if start > c.pub.durable {
		c.pub.complete, c.pub.durable = start, start
	}
	if tables, reason := c.snapshotPlan(created, c.pub.snapshot, c.ckptFound); len(tables) > 0 {
		name, at := exported, start
		var holder *pgconn.PgConn
		if !created {
			holder, name, at, err = exportSnapshot(ctx, c.cfg.DSN, c.cfg.Slot)
			if err != nil {
				return err
			}
		}
		c.log.Info("snapshot needed", "reason", reason, "tables", tables)
		c.ctl.snapshotStarted(tables)
		err := c.snapshot(ctx, conn, name, at, tables)
		if holder != nil {
			// The temporary slot exporting the snapshot holds WAL and the
			// catalog xmin back: it goes as soon as the snapshot was read,
			// not when streaming ends.
			holder.Close(context.Background())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snapshot: %w; a restart goes on with the tables not finished", err)
		}
		c.ctl.snapshotDone()
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
	c.streamingOnce.Do(func() { close(c.streaming) })
	c.ctl.setPhase(PhaseStreaming)
	c.log.Info("capture streaming", "slot", c.cfg.Slot, "slot_created", created || recovered, "from", start.String(),
		"resume_after", c.resume.String(), "publication", c.cfg.Publication, "tables", c.tables,
		"topic_prefix", c.cfg.TopicPrefix, "signal_table", c.cfg.SignalTable)
	c.incr = &incremental{}
	if st := c.pub.incremental; st != nil {
		c.log.Info("incremental snapshots pending", "tables", len(st.Tables), "next", st.Tables[0].Table)
	}
	c.publishProgress()
	asm := newAssembler(&c.cfg, c.db, c.tables,
		Checkpoint{Position: c.resume, LastCommit: c.pub.lastCommit, Snapshot: c.pub.snapshot}, time.Now)
	return c.explainStreamError(ctx, conn, version, c.stream(ctx, conn, repl, asm))
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
	opts = append(opts, kgo.RecordPartitioner(truncatePartitioner()))
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
	ckpt, found, err := readCheckpoint(ctx, c.cfg.Brokers, c.cfg.KafkaOptions, c.cfg.CheckpointTopic, key)
	if err != nil {
		return fail(err)
	}
	if !found {
		c.log.Info("no checkpoint yet; publishing from the slot's position", "checkpoint_topic", c.cfg.CheckpointTopic, "key", key)
	}
	c.kafka, c.resume, c.ckpt, c.ckptFound = kafka, ckpt.Position, ckpt, found
	c.pub = newPublisher(kafka, c.cfg.CheckpointTopic, key, c.cfg.TransactionRecords, c.cfg.TransactionTime, ckpt)
	c.pub.committed = func(last change.Position) {
		c.metrics.transactions.Inc()
		c.ctl.observe(func(ctl *control) { ctl.committed = last })
	}
	return nil
}

// ensureTopic creates topic with the broker's default partitions (the
// transaction topic with one) and replication unless it exists.
func (c *Capture) ensureTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	if c.topics[topic] {
		return nil
	}
	// The transaction topic has one partition, whatever the broker's
	// default: its END records stay in commit order for the consumers that
	// need it (a transaction-consistent read model's gate).
	partitions := int32(-1)
	if topic == serde.TransactionTopic(c.cfg.TopicPrefix) {
		partitions = 1
	}
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	c.topics[topic] = true
	return nil
}
