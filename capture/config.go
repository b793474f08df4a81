package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a [Capture]. DSN and Tables are required; every other
// field has a default.
type Config struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://user:pass@host:5432/db. Capture opens one ordinary and one
	// replication connection with it; the user needs the REPLICATION
	// attribute and ownership of the captured tables (to create the
	// publication).
	DSN string
	// Tables lists the captured tables as schema.table (schema defaults to
	// public). Wildcards select tables by pattern: "public.*",
	// "sales.order_?", "*.events" (path.Match syntax), matched when Run
	// starts.
	Tables []string
	// ExcludeTables removes tables (patterns as in Tables) from Tables.
	ExcludeTables []string
	// ExcludeColumns drops columns, as schema.table.column patterns, from
	// every event and schema: they never leave PostgreSQL.
	ExcludeColumns []string
	// MaskColumns replaces the values of columns (schema.table.column
	// patterns) with the hex SHA-256 of MaskSalt and the value, so that
	// personal data can still be joined on but not read. Masked columns
	// travel as strings.
	MaskColumns []string
	// MaskSalt salts the hashes of MaskColumns; required with them. Keep it
	// secret: with it, hashes of guessable values can be reversed.
	MaskSalt string
	// Brokers are the Kafka bootstrap servers capture publishes to.
	Brokers []string
	// KafkaOptions are extra franz-go options for every Kafka client capture
	// opens (TLS, SASL: kafkaconn.Config.KgoOpts). Capture sets the
	// transactional id itself.
	KafkaOptions []kgo.Opt
	// CheckpointTopic is the compacted topic capture commits its position to,
	// in the same transactions as the change records. Default
	// "cdcflow.checkpoints"; one topic serves many captures (the key is
	// <prefix>/<slot>).
	CheckpointTopic string
	// TransactionRecords and TransactionTime bound one Kafka transaction:
	// capture commits once either is reached, at the latest at the end of a
	// source transaction past TransactionTime. Defaults 5000 and 100ms.
	TransactionRecords int
	TransactionTime    time.Duration
	// TopicPrefix names the topics, <prefix>.<schema>.<table>, and the
	// envelopes' source.name. Default "cdcflow".
	TopicPrefix string
	// Slot is the logical replication slot. Default "cdcflow".
	Slot string
	// SlotBusyTimeout is how long capture waits for a slot that another
	// connection still holds (SQLSTATE 55006: a capture that was just killed,
	// whose walsender PostgreSQL has not yet ended, or a second capture of
	// the same slot, which the first Kafka commit of this one fences). It
	// retries every second meanwhile. Default 60s, PostgreSQL's default
	// wal_sender_timeout; negative fails at once.
	SlotBusyTimeout time.Duration
	// Publication is the publication capture reads. Default "cdcflow".
	Publication string
	// Snapshot says when capture reads the rows the tables already hold.
	// Default SnapshotInitial.
	Snapshot SnapshotMode
	// SnapshotWorkers is how many connections read a snapshot in parallel
	// (each table split in primary-key ranges). Default 2.
	SnapshotWorkers int
	// SnapshotChunkRows is the target number of rows of one range. Default
	// 50000.
	SnapshotChunkRows int
	// SnapshotProgressInterval is how often a running snapshot logs its
	// progress (rows done, estimated total, rows/s). Default 5s.
	SnapshotProgressInterval time.Duration
	// SnapshotProgress, when set, is called from the snapshot loop after
	// each batch of rows it publishes (a few hundred), with the rows
	// published so far and the estimated total (the tables' reltuples; 0
	// when PostgreSQL has no estimate), and once more when the snapshot is
	// committed, with done == total. It must return quickly: a progress
	// bar, not I/O.
	SnapshotProgress func(done, total int64)
	// IncrementalChunkRows is how many rows, in primary-key order, one
	// chunk of an incremental snapshot reads (Debezium's
	// incremental.snapshot.chunk.size). Default 1024.
	IncrementalChunkRows int
	// SignalTable is the signalling table, schema.table, in Debezium's
	// debezium_signal shape (id varchar(42) PRIMARY KEY, type varchar(32)
	// NOT NULL, data varchar(2048)); Debezium calls it
	// signal.data.collection. Capture creates it if it is missing, adds it
	// to the publication and reads the rows inserted into it from the
	// replication stream as signals (execute-snapshot, stop-snapshot, log);
	// it never publishes the table's changes. Empty: no signals. Anyone who
	// may insert into it can make capture read any captured table, with a
	// filter of their choosing: grant INSERT as you would SELECT on those.
	SignalTable string
	// SlotFailover creates the slot as a failover slot (Debezium's
	// slot.failover), and makes an existing one so, when PostgreSQL is 17
	// or newer: a standby with sync_replication_slots keeps a copy of it,
	// and capture goes on from the promoted standby after a failover. On an
	// older server capture logs that it cannot and uses an ordinary slot.
	SlotFailover bool
	// DeadLetterTopic receives the changes capture cannot encode (a value
	// with no Avro form, a schema the registry rejects), with the error and
	// the source position in headers and the row in PostgreSQL's text form
	// as JSON, so that nothing is lost and capture keeps going. Default
	// <prefix>.dlq.
	DeadLetterTopic string
	// NoTombstones drops the tombstone (same key, null value) capture writes
	// after each delete so that log compaction can forget the row.
	NoTombstones bool
	// NoTransactionTopic drops the <prefix>.transaction topic of BEGIN and
	// END records (the envelopes' transaction block stays).
	NoTransactionTopic bool
	// HeartbeatInterval is how often capture writes a heartbeat (a
	// transactional logical decoding message with prefix
	// [HeartbeatPrefix]) into the database, so that the slot's confirmed
	// position keeps moving, and retained WAL stays bounded, while the
	// captured tables are idle and others are written. Default 10s; negative
	// turns heartbeats off.
	HeartbeatInterval time.Duration
	// MessagePrefixes selects the logical decoding messages
	// (pg_logical_emit_message) capture publishes to <prefix>.message: those
	// whose prefix is listed, or all when the list is empty. Heartbeats are
	// never published.
	MessagePrefixes []string
	// SkippedOperations are the operations capture does not publish, as
	// Debezium's skipped.operations: any of change.OpCreate, OpUpdate,
	// OpDelete and OpTruncate. nil is Debezium's default, truncates only; an
	// empty, non-nil slice publishes every operation (Debezium's "none").
	// [ParseSkippedOperations] reads Debezium's form ("t", "none", "c,u").
	SkippedOperations []change.Op
	// TableRefreshInterval is how often capture looks for tables created
	// since it started that match a pattern of Tables (and no pattern of
	// ExcludeTables). It adds such a table to the publication, reads the
	// rows it already holds (as a snapshot would, unless Snapshot is
	// SnapshotNoData) and streams its changes, without a restart of the
	// process. Default 10s; negative turns it off. Without wildcards in
	// Tables it does nothing.
	TableRefreshInterval time.Duration
	// StatusInterval is how often capture reports its confirmed position to
	// PostgreSQL. Default 10s.
	StatusInterval time.Duration
	// Logger receives capture's log lines. Default: discard.
	Logger *slog.Logger
	// Metrics registers capture's Prometheus metrics (events, dead letters,
	// lag, transactions, snapshot rows). Default: not registered.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "cdcflow"
	}
	if c.Slot == "" {
		c.Slot = "cdcflow"
	}
	if c.Publication == "" {
		c.Publication = "cdcflow"
	}
	if c.Snapshot == "" {
		c.Snapshot = SnapshotInitial
	}
	if c.SnapshotWorkers == 0 {
		c.SnapshotWorkers = 2
	}
	if c.SnapshotChunkRows == 0 {
		c.SnapshotChunkRows = 50000
	}
	if c.IncrementalChunkRows == 0 {
		c.IncrementalChunkRows = 1024
	}
	if c.SnapshotProgressInterval == 0 {
		c.SnapshotProgressInterval = 5 * time.Second
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = c.TopicPrefix + ".dlq"
	}
	if c.CheckpointTopic == "" {
		c.CheckpointTopic = "cdcflow.checkpoints"
	}
	if c.TransactionRecords == 0 {
		c.TransactionRecords = 5000
	}
	if c.TransactionTime == 0 {
		c.TransactionTime = 100 * time.Millisecond
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 10 * time.Second
	}
	if c.SlotBusyTimeout == 0 {
		c.SlotBusyTimeout = time.Minute
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.SkippedOperations == nil {
		c.SkippedOperations = []change.Op{change.OpTruncate}
	}
	if c.TableRefreshInterval == 0 {
		c.TableRefreshInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate reports every problem with c at once, its zero fields taken
// at their defaults, as New takes them.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("no PostgreSQL DSN: set --pg-dsn (CDCFLOW_PG_DSN), e.g. postgres://user:pass@localhost:5432/db"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers: set --kafka-brokers (CDCFLOW_KAFKA_BROKERS), e.g. localhost:9092"))
	}
	if c.TransactionRecords < 0 || c.TransactionTime < 0 {
		errs = append(errs, fmt.Errorf("transaction bounds %d records, %v are negative", c.TransactionRecords, c.TransactionTime))
	}
	if !c.Snapshot.valid() {
		errs = append(errs, fmt.Errorf("snapshot mode %q is unknown: set --snapshot-mode (CDCFLOW_SNAPSHOT_MODE) to initial, initial_only, no_data or when_needed", c.Snapshot))
	}
	if c.SnapshotWorkers < 1 || c.SnapshotChunkRows < 1 {
		errs = append(errs, fmt.Errorf("snapshot workers (%d) and chunk rows (%d) must be at least 1", c.SnapshotWorkers, c.SnapshotChunkRows))
	}
	if c.IncrementalChunkRows < 1 {
		errs = append(errs, fmt.Errorf("incremental snapshot chunk rows (%d) must be at least 1", c.IncrementalChunkRows))
	}
	if c.SignalTable != "" {
		if _, _, err := splitTable(c.SignalTable); err != nil {
			errs = append(errs, fmt.Errorf("signal table: %w", err))
		}
	}
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("no tables to capture: set --tables (CDCFLOW_TABLES), e.g. public.orders"))
	}
	for _, t := range slices.Concat(c.Tables, c.ExcludeTables) {
		if err := checkPattern(t, 2); err != nil {
			errs = append(errs, err)
		}
	}
	for _, col := range slices.Concat(c.ExcludeColumns, c.MaskColumns) {
		if err := checkPattern(col, 3); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.MaskColumns) > 0 && c.MaskSalt == "" {
		errs = append(errs, errors.New("--mask-columns needs a salt: set --mask-salt (CDCFLOW_MASK_SALT) to a secret; without one, hashes of guessable values can be reversed"))
	}
	if !identifier.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("slot name %q is invalid: use lower-case letters, digits and underscores", c.Slot))
	}
	if !identifier.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("publication name %q is invalid: use lower-case letters, digits and underscores", c.Publication))
	}
	if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(c.TopicPrefix) {
		errs = append(errs, fmt.Errorf("topic prefix %q is invalid: start with a letter or '_', then letters, digits or '_'", c.TopicPrefix))
	}
	if c.StatusInterval < 0 {
		errs = append(errs, fmt.Errorf("status interval %v is negative", c.StatusInterval))
	}
	for _, op := range c.SkippedOperations {
		if !slices.Contains(skippableOps, op) {
			errs = append(errs, fmt.Errorf("skipped operation %q is not one of c, u, d, t", op))
		}
	}
	return errors.Join(errs...)
}

var patternPart = regexp.MustCompile(`^[a-z_*?\[][a-z0-9_*?\[\]\-]*$`)

// checkPattern checks a pattern of parts dot-separated names (a table is
// schema.table or table; a column schema.table.column).
func checkPattern(p string, parts int) error {
	names := strings.Split(p, ".")
	if len(names) > parts || (parts == 3 && len(names) != 3) {
		what := "schema.table"
		if parts == 3 {
			what = "schema.table.column"
		}
		return fmt.Errorf("%q is not a %s name or pattern", p, what)
	}
	for _, n := range names {
		if !patternPart.MatchString(n) {
			return fmt.Errorf("%q is not a plain name or pattern (lower-case letters, digits, underscores, wildcards * ? [])", p)
		}
		if _, err := path.Match(n, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// splitTable splits "schema.table" (or "table", in schema public).
func splitTable(s string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		schema, table = "public", s
	}
	if !identifier.MatchString(schema) || !identifier.MatchString(table) {
		return "", "", fmt.Errorf("table %q is not a plain schema.table name (lower-case letters, digits, underscores)", s)
	}
	return schema, table, nil
}
