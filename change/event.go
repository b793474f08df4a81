package change

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Row holds a row's column values by column name. Values use these Go types,
// whatever the wire format they travelled in:
//
//	smallint, integer              int32
//	bigint, oid                    int64
//	real, double precision         float32, float64
//	numeric, money                 *big.Rat (see decimal.handling.mode below)
//	boolean                        bool
//	text, varchar, char, name      string
//	bytea                          []byte
//	date                           time.Time (midnight UTC), or Infinity
//	time                           time.Duration since midnight
//	timetz                         string, ISO-8601 in UTC ("08:15:30.5Z")
//	timestamp, timestamptz         time.Time (UTC; a timestamp's wall clock read as UTC), or Infinity
//	interval                       MicroDuration
//	uuid, json, jsonb, xml, ltree  string
//	inet, cidr, macaddr, macaddr8  string
//	enum types                     string (the label)
//	hstore                         string, a JSON object
//	bit(1), bit varying(1)         bool
//	bit(n), bit varying            Bits
//	point                          Point
//	box, lseg, path, polygon       Geometry
//	circle                         Circle
//	line                           Line
//	tsvector                       string, PostgreSQL's text form
//	arrays                         []any of the element type's values, nil for NULL elements
//	anything else                  string, PostgreSQL's text form
//
// Domains take the type of their base type. Capture produces exactly these
// values, and a consumer decoding capture's envelopes gets them back, with one
// exception: how numeric and money values travel depends on the encoder's
// decimal.handling.mode. With precise (the default) a consumer gets *big.Rat,
// with double a float64 and with string the decimal text ("-12.50"). A numeric
// NaN or ±Infinity is a float64 (math.NaN(), math.Inf) in capture's rows; it
// has no precise form, so with precise it travels as null, as Debezium sends
// it (serde.SpecialDecimals says otherwise).
//
// PostgreSQL's 'infinity' and '-infinity' dates and timestamps are
// [Infinity] values; they travel as the extreme values Debezium sends for
// them and decode back into an Infinity.
//
// A NULL column is present with a nil value. A column whose value the source
// did not send (an unchanged TOASTed value under REPLICA IDENTITY DEFAULT)
// holds [Unavailable]; on the wire it travels as Debezium's placeholder
// [UnavailablePlaceholder].
type Row map[string]any

// Infinity is PostgreSQL's 'infinity' (PositiveInfinity) or '-infinity'
// (NegativeInfinity) in a date, timestamp or timestamptz column: later, or
// earlier, than every other value of the column.
type Infinity int8

// The two infinities of dates and timestamps.
const (
	NegativeInfinity Infinity = -1
	PositiveInfinity Infinity = +1
)

// String returns PostgreSQL's text form: "infinity" or "-infinity".
func (i Infinity) String() string {
	if i < 0 {
		return "-infinity"
	}
	return "infinity"
}

// MicroDuration is an interval as Debezium writes it
// (io.debezium.time.MicroDuration): a number of microseconds, a month counting
// 30.4375 days (365.25 / 12) and a day 24 hours. It is an approximation of
// PostgreSQL's interval, which keeps months, days and microseconds apart,
// and it reaches far beyond a time.Duration's ±292 years.
type MicroDuration int64

// Duration returns d as a time.Duration, clamped to its range.
func (d MicroDuration) Duration() time.Duration {
	switch {
	case d > math.MaxInt64/1000:
		return math.MaxInt64
	case d < math.MinInt64/1000:
		return math.MinInt64
	}
	return time.Duration(d) * time.Microsecond
}

// Unavailable is the value of a column the source did not send: PostgreSQL
// leaves unchanged TOASTed values (large text, bytea, jsonb) out of an
// update's new row unless the table has REPLICA IDENTITY FULL. It is never a
// real value; code that reads rows must not mistake it for one.
type Unavailable struct{}

// UnavailablePlaceholder is how an [Unavailable] value travels in text and
// bytes columns, as Debezium's unavailable.value.placeholder default.
const UnavailablePlaceholder = "__debezium_unavailable_value"

// Column describes one column of a captured table.
type Column struct {
	Name string
	// Type is PostgreSQL's type name, e.g. "int4", "numeric", "timestamptz",
	// "_text" for text[]; for a domain, the name of its base type.
	Type string
	// OID is the object id in pg_type of Type.
	OID uint32
	// TypeMod is the type modifier (atttypmod), -1 when there is none:
	// numeric's precision and scale, the fractional digits of time and
	// timestamp types. An array column's modifier applies to its elements.
	TypeMod int32
	// EnumValues are the labels of an enum type in their declared order; nil
	// for other types.
	EnumValues []string
	// Elem describes the elements of an array column (Type "_int4" has an
	// Elem of Type "int4"); nil for other columns. Only its type fields
	// matter: Type, OID and EnumValues (the array's TypeMod applies).
	Elem *Column
	// Key marks the columns of the table's primary key (or replica identity).
	Key      bool
	Nullable bool
	// Default is the value of the column's DEFAULT as Debezium reads it
	// (in a Row value's Go type), nil when it has none Debezium can read: a
	// literal of a type Debezium parses defaults of, or for a function
	// (now(), nextval(...)) a placeholder of the type (0, "", the epoch).
	// It is the schema's default, and the value of a NOT NULL column that a
	// change does not carry (a key-only before image).
	Default any
}

// Table describes a captured table: its name and its columns in order.
type Table struct {
	Schema  string
	Name    string
	Columns []Column
}

// KeyColumns returns the key columns in table order.
func (t *Table) KeyColumns() []Column {
	var key []Column
	for _, c := range t.Columns {
		if c.Key {
			key = append(key, c)
		}
	}
	return key
}

// String returns the qualified name, schema.table.
func (t *Table) String() string { return t.Schema + "." + t.Name }

// Source is the envelope's source block: where a change came from. Field
// names and meanings are Debezium's (io.debezium.connector.postgresql.Source).
// A change read from a topic another Debezium connector wrote
// (topologies.DebeziumTable) fills the fields its source block has: the
// common ones, and its connector's (binlog coordinates for MySQL and
// MariaDB, the collection and oplog order for MongoDB).
type Source struct {
	// Version is cdcflow's version, not Debezium's: it names the cdcflow
	// release that wrote the change. In another connector's change it is
	// that Debezium's version.
	Version string
	// Connector is "postgresql" for cdcflow's changes; another connector's
	// name for theirs ("mysql", "mariadb", "mongodb", "postgresql").
	Connector string
	Name      string // the topic prefix (Debezium's logical server name)
	TsMs      int64  // commit time in the source database, ms since the epoch
	// Snapshot is "false" for streamed changes and one of the snapshot
	// markers (SnapshotFirst, ...) for snapshot reads.
	Snapshot string
	DB       string
	// Sequence is a JSON array of two decimal LSN strings, as Debezium forms
	// it: the end LSN of the last transaction committed before this change's
	// (null before the first one capture read) and the LSN of the change
	// itself. See [SequenceFor].
	Sequence string
	TsUs     int64
	TsNs     int64
	Schema   string
	Table    string
	TxID     int64
	LSN      LSN // the LSN of the change itself
	// Origin is the replication origin the transaction came from (it was
	// replayed by PostgreSQL's logical replication, or a session set one with
	// pg_replication_origin_session_setup), and OriginLSN its commit LSN on
	// the origin; "" and 0 (null on the wire) for local transactions.
	Origin    string
	OriginLSN LSN

	// The binlog coordinates of a MySQL or MariaDB change (Debezium's
	// io.debezium.connector.mysql.Source and .mariadb.Source): the server,
	// the GTID of its transaction when GTIDs are on, the binlog file and the
	// position of the event in it, the row's index in the event, the thread
	// and, when the connector includes it, the statement. DB and Table name
	// the table.
	ServerID int64  `json:",omitempty"`
	GTID     string `json:",omitempty"`
	File     string `json:",omitempty"`
	Pos      int64  `json:",omitempty"`
	Row      int32  `json:",omitempty"`
	Thread   int64  `json:",omitempty"`
	Query    string `json:",omitempty"`

	// The oplog coordinates of a MongoDB change
	// (io.debezium.connector.mongo.Source): Ord is the increment of the
	// change's cluster time (its seconds are TsMs / 1000 unless WallTime is
	// set), Lsid and TxnNumber name the session and transaction of a
	// multi-document transaction, WallTime is the primary's wall clock
	// (MongoDB 6 and later, and then also TsMs). DB and Table name the
	// collection.
	Ord       int32  `json:",omitempty"`
	Lsid      string `json:",omitempty"`
	TxnNumber int64  `json:",omitempty"`
	WallTime  int64  `json:",omitempty"`
}

// The values of source.snapshot, as Debezium's SnapshotRecord names them: a
// streamed change is SnapshotFalse; of the reads of a snapshot the very first
// is SnapshotFirst and the very last SnapshotLast, each table's first and last
// are SnapshotFirstInTable and SnapshotLastInTable, the others SnapshotTrue.
const (
	SnapshotTrue         = "true"
	SnapshotFirst        = "first"
	SnapshotFirstInTable = "first_in_data_collection"
	SnapshotLastInTable  = "last_in_data_collection"
	SnapshotLast         = "last"
	SnapshotFalse        = "false"
	SnapshotIncremental  = "incremental"
)

// Transaction is the envelope's transaction block.
type Transaction struct {
	// ID is "<txId>:<LSN of the change>", as Debezium's PostgreSQL connector
	// forms it (PostgresTransactionMonitor): unique per change, not per
	// transaction; the transaction topic's BEGIN and END records carry the
	// LSNs of the BEGIN and the end of the transaction instead.
	ID string
	// TotalOrder is the change's 1-based index among all changes of its
	// transaction; DataCollectionOrder its index among changes to its table.
	TotalOrder          int64
	DataCollectionOrder int64
	// CommitLSN is the LSN of the transaction's commit: cdcflow's extension
	// of the block (transaction.commit_lsn, the name Debezium's DBZ-2353
	// proposes for it), which with TotalOrder makes the change's [Position].
	// 0 (null on the wire) in records another producer wrote.
	CommitLSN LSN
}

// Event is one change to one row: a Debezium change envelope.
type Event struct {
	Op     Op
	Before Row // nil for creates and reads; key columns only unless REPLICA IDENTITY FULL
	After  Row // nil for deletes
	Source Source
	// Transaction is nil only for events that belong to no transaction.
	Transaction *Transaction
	TsMs        int64 // when cdcflow processed the change, ms since the epoch
	// Position orders this change among all changes of its slot. It travels in
	// transaction.commit_lsn and transaction.total_order; a change without a
	// transaction block (a snapshot read) is at source.lsn, index 0.
	Position Position
}

// TableName returns the qualified name of the changed table: schema.table,
// or, for sources without schemas (MySQL, MariaDB, MongoDB), database.table.
func (e *Event) TableName() string {
	if e.Source.Schema == "" && e.Source.DB != "" {
		return e.Source.DB + "." + e.Source.Table
	}
	return e.Source.Schema + "." + e.Source.Table
}

// SequenceFor forms the source.sequence value of a change at lsn, as
// Debezium's SourceInfo.sequence does: ["<lastCommit>","<lsn>"], decimal,
// where lastCommit is the end LSN of the last transaction committed before
// the change's; 0 writes null (no commit read yet), as in
// [null,"24023128"].
func SequenceFor(lastCommit, lsn LSN) string {
	b := make([]byte, 0, 48) // written for every change: strconv, not fmt
	if lastCommit == 0 {
		b = append(b, "[null,"...)
	} else {
		b = strconv.AppendUint(append(b, `["`...), uint64(lastCommit), 10)
		b = append(b, `",`...)
	}
	b = strconv.AppendUint(append(b, '"'), uint64(lsn), 10)
	return string(append(b, `"]`...))
}

// ParseSequence parses a source.sequence value: two decimal LSN strings, the
// first of which may be null (lastCommit 0).
func ParseSequence(s string) (lastCommit, lsn LSN, err error) {
	var parts []*string
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) != 2 || parts[1] == nil {
		return 0, 0, fmt.Errorf("parse source.sequence %q: want [\"<last commit LSN>\" or null, \"<LSN>\"]", s)
	}
	var v [2]uint64
	for i, p := range parts {
		if p == nil {
			continue
		}
		if v[i], err = strconv.ParseUint(*p, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("parse source.sequence %q: %w", s, err)
		}
	}
	return LSN(v[0]), LSN(v[1]), nil
}
