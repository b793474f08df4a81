package topologies

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// Topic is the name of a Kafka topic: a table's change topic, an event
// topic.
type Topic string

// Table is a captured table read as rows of type T. Its topic is the one
// capture writes: <prefix>.<schema>.<table>; or, declared with
// [DebeziumTable], one that another Debezium connector writes.
type Table[T any] struct {
	Topic Topic
	// Debezium marks a topic another Debezium connector writes: see
	// [DebeziumTable].
	Debezium bool
}

// TableOf declares the captured table schema.table under topic prefix prefix,
// read as rows of type T. Struct fields map to columns by their
// `cdc:"column"` tag, or by their name in snake_case; `cdc:"-"` skips a
// field. A pointer field reads NULL as nil.
func TableOf[T any](prefix, schema, table string) Table[T] {
	return Table[T]{Topic: Topic(prefix + "." + schema + "." + table)}
}

// Row returns the [change.Row] capture would send for v: the inverse of how
// the table's nodes read rows, so that tests can feed typed rows (package
// topotest does). Each mapped field becomes a column: a nil pointer, slice or
// interface is NULL, another pointer its value; integers become int32
// (int8, int16, int32 fields) or int64, a *big.Rat a numeric (a copy), a
// time.Time its UTC time, a time.Duration a time of day and a
// change.MicroDuration an interval; floats, bools, strings (and types
// defined on them), []byte and []any pass as they are. A field of a type no
// column reads into (a uint, a map, a struct other than time.Time) is an
// error naming it.
func (t Table[T]) Row(v T) (change.Row, error) {
	dec, err := newRowDecoder[T]()
	if err != nil {
		return nil, err
	}
	return dec.encode(v)
}

// Change is a change to a row of type T.
type Change[T any] struct {
	Op       change.Op
	Before   *T // nil for creates and snapshot reads
	After    *T // nil for deletes
	Position change.Position
	Source   change.Source
}

// Sample is one row's contribution to a metric: Value counts towards the
// Bucket of the Series, e.g. {"revenue_cents_per_day", "2026-11-21", 4250}.
// Ranked keeps the series as a ranking (a Redis sorted set, buckets ordered
// by value: top customers by revenue) instead of a hash; TTL, when set,
// expires the series that long after its last change (for rolling windows,
// with one series per period).
type Sample = engine.Sample

// Node is one step of a topology: the value a node constructor of this
// package returns ([Metrics], [Events], [Index], [ReadModel],
// [IndexReadModel], [Projection]).
type Node interface {
	// Engine returns the node as cdcflow's processors and test harness run
	// it. Its type is internal to cdcflow: a topology is built with this
	// package's constructors only.
	Engine() engine.Node
}

// MetricsNode keeps metrics over a table's current rows. Build it with
// [Metrics].
type MetricsNode struct{ e *engine.Metrics }

// Metrics declares metrics over the current rows of table: measure tells what
// one row contributes. When a row is inserted, updated or deleted, the
// metrics move by the difference between what its new and its previous
// version contribute, so they always equal measure summed over the table.
// measure must be a pure function of the row.
func Metrics[T any](table Table[T], measure func(T) []Sample) *MetricsNode {
	n := &engine.Metrics{Input: string(table.Topic), Debezium: table.Debezium, RowType: typeName[T]()}
	dec, err := newRowDecoder[T]()
	switch {
	case err != nil:
		n.Err = err
	case measure == nil:
		n.Err = errors.New("measure function is nil")
	default:
		n.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
		n.Contribute = func(row any) []Sample { return measure(row.(T)) }
	}
	return &MetricsNode{n}
}

// Engine implements [Node].
func (n *MetricsNode) Engine() engine.Node { return n.e }

// Topology is a named set of nodes: the unit a processor binary runs, and
// the name of its consumer group and state. It is a plain value: building
// one does no I/O.
type Topology struct {
	Name  string
	Nodes []Node
}

// New declares a topology.
func New(name string, nodes ...Node) *Topology {
	return &Topology{Name: name, Nodes: nodes}
}

// Engine returns the topology's nodes as cdcflow's processors and test
// harness run them.
func (t *Topology) Engine() []engine.Node {
	nodes := make([]engine.Node, len(t.Nodes))
	for i, n := range t.Nodes {
		nodes[i] = n.Engine()
	}
	return nodes
}

// Validate reports every mistake in t at once: each node's (a row type that
// is not a struct, a nil function, an index name Elasticsearch refuses), and
// those between nodes (a change topic read by two nodes of the topology's
// group, two read models or projections of one name, a search index over a
// read model the topology does not have).
func (t *Topology) Validate() error {
	for i, n := range t.Nodes {
		if n == nil || reflect.ValueOf(n.Engine()).IsNil() {
			return fmt.Errorf("topology %s: node %d is nil, or not built with this package's constructors", t.Name, i)
		}
	}
	return engine.ValidateTopology(t.Name, t.Engine())
}

// String describes the topology, one line per node.
func (t *Topology) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology %s\n", t.Name)
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, "  %s\n", n.Engine().Describe())
	}
	return b.String()
}

func typeName[T any]() string { return fmt.Sprintf("%T", *new(T)) }

// DebeziumTable declares a change topic that one of Debezium's own
// connectors writes — MySQL, MariaDB, MongoDB or PostgreSQL — read as rows
// of type T, for every node that reads tables. Struct fields map to columns
// (a MongoDB document's top-level fields, _id among them: tag it
// `cdc:"_id"`) as for [TableOf].
//
// Records may be Avro in the Confluent wire format (the schema registry of
// processors.Config's Decoder), or JSON from Kafka Connect's JsonConverter
// with or without schemas; each record says which. Each change's position
// is made from its source coordinates (see [change.DebeziumPosition] for the
// order it gives per connector), so a change delivered twice, or a topic
// replayed, changes no sink, as with cdcflow's own topics. A record that
// cannot be read goes to the dead-letter topic. The topic must be named as
// Debezium names it, <prefix>.<database or schema>.<table or collection>:
// a change of another table is a misplaced record.
func DebeziumTable[T any](topic string) Table[T] {
	return Table[T]{Topic: Topic(topic), Debezium: true}
}
