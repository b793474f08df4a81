package change

import (
	"fmt"
	"math"
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
//	date                           time.Time (midnight UTC)
//	time                           time.Duration since midnight
//	timetz                         string, ISO-8601 in UTC ("08:15:30.5Z")
//	timestamp, timestamptz         time.Time (UTC; a timestamp's wall clock read as UTC)
//	interval                       MicroDuration
//	uuid, json, jsonb, xml, ltree  string
//	inet, cidr, macaddr, macaddr8  string
//	enum types                     string (the label)
//	hstore                         string, a JSON object
//	arrays                         []any of the element type's values, nil for NULL elements
//	anything else                  string, PostgreSQL's text form
//
// Domains take the type of their base type. Capture produces exactly these
// values, and a consumer decoding capture's envelopes gets them back, with one
// exception: how numeric and money values travel depends on the encoder's
// decimal.handling.mode. With precise (the default) a consumer gets *big.Rat,
// with double a float64 and with string the decimal text ("-12.50"). A numeric
// NaN or ±Infinity is a float64 (math.NaN(), math.Inf) in capture's rows; it
// has no precise form, so with precise the change cannot be encoded (capture
// sends it to its dead-letter topic; Debezium stops).
//
// A NULL column is present with a nil value. A column whose value the source
// did not send (an unchanged TOASTed value under REPLICA IDENTITY DEFAULT)
// holds [Unavailable]; on the wire it travels as Debezium's placeholder
// [UnavailablePlaceholder].
type Row map[string]any

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
type Source struct {
	Version   string // cdcflow's version
	Connector string // always "postgresql"
	Name      string // the topic prefix (Debezium's logical server name)
	TsMs      int64  // commit time in the source database, ms since the epoch
	Snapshot  string // "true", "last" or "false"
	DB        string
	// Sequence is a JSON array of two decimal LSN strings: the commit LSN of
	// the change's transaction and the LSN of the change itself.
	Sequence string
	TsUs     int64
	TsNs     int64
	Schema   string
	Table    string
	TxID     int64
	LSN      LSN // the LSN of the change itself
}

// Transaction is the envelope's transaction block.
type Transaction struct {
	// ID is "<txId>:<commit LSN>", as Debezium forms it for PostgreSQL.
	ID string
	// TotalOrder is the change's 1-based index among all changes of its
	// transaction; DataCollectionOrder its index among changes to its table.
	TotalOrder          int64
	DataCollectionOrder int64
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
	// source.sequence (the commit LSN) and transaction.total_order (the index).
	Position Position
}

// TableName returns the qualified name of the changed table.
func (e *Event) TableName() string { return e.Source.Schema + "." + e.Source.Table }

// SequenceFor forms the source.sequence value for a change at lsn in a
// transaction that commits at commit.
func SequenceFor(commit, lsn LSN) string {
	return fmt.Sprintf(`["%d","%d"]`, uint64(commit), uint64(lsn))
}

// ParseSequence parses a source.sequence value formed by [SequenceFor].
func ParseSequence(s string) (commit, lsn LSN, err error) {
	var c, l uint64
	if _, err := fmt.Sscanf(s, `["%d","%d"]`, &c, &l); err != nil {
		return 0, 0, fmt.Errorf("parse source.sequence %q: %w", s, err)
	}
	return LSN(c), LSN(l), nil
}
