package topologies

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// Table is a captured table read as rows of type T. Its topic is the one
// capture writes: <prefix>.<schema>.<table>.
type Table[T any] struct {
	Topic string
}

// TableOf declares the captured table schema.table under topic prefix prefix,
// read as rows of type T. Struct fields map to columns by their
// `cdc:"column"` tag, or by their name in snake_case; `cdc:"-"` skips a
// field. A pointer field reads NULL as nil.
func TableOf[T any](prefix, schema, table string) Table[T] {
	return Table[T]{Topic: prefix + "." + schema + "." + table}
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
type Sample struct {
	Series string
	Bucket string
	Value  int64
	// Ranked keeps the series as a ranking (a Redis sorted set, buckets
	// ordered by value: top customers by revenue) instead of a hash.
	Ranked bool
	// TTL, when set, expires the series that long after its last change:
	// for rolling windows, with one series per period (say, per hour of a
	// per-minute series).
	TTL time.Duration
}

// Node is one step of a topology. The node constructors of this package
// ([Metrics], [Index]) are its only implementations.
type Node interface {
	// Input is the topic the node reads.
	Input() string
	describe() string
	validate() error
}

// MetricsNode keeps metrics over a table's current rows. Build it with
// [Metrics].
type MetricsNode struct {
	input   string
	decode  func(change.Row) (any, error)
	measure func(any) []Sample
	rowType string
	err     error
}

// Metrics declares metrics over the current rows of table: measure tells what
// one row contributes. When a row is inserted, updated or deleted, the
// metrics move by the difference between what its new and its previous
// version contribute, so they always equal measure summed over the table.
// measure must be a pure function of the row.
func Metrics[T any](table Table[T], measure func(T) []Sample) *MetricsNode {
	n := &MetricsNode{input: table.Topic, rowType: fmt.Sprintf("%T", *new(T))}
	dec, err := newRowDecoder[T]()
	if err != nil {
		n.err = err
		return n
	}
	if measure == nil {
		n.err = errors.New("measure function is nil")
		return n
	}
	n.decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.measure = func(row any) []Sample { return measure(row.(T)) }
	return n
}

// Input returns the topic the node reads.
func (n *MetricsNode) Input() string { return n.input }

func (n *MetricsNode) describe() string {
	return fmt.Sprintf("metrics over %s (rows as %s)", n.input, n.rowType)
}

func (n *MetricsNode) validate() error {
	if n.err != nil {
		return fmt.Errorf("metrics over %s: %w", n.input, n.err)
	}
	return nil
}

// Measure returns what row, a Row of the node's table, contributes. A nil row
// (a deleted one) contributes nothing.
func (n *MetricsNode) Measure(row change.Row) ([]Sample, error) {
	if row == nil {
		return nil, nil
	}
	v, err := n.decode(row)
	if err != nil {
		return nil, err
	}
	return n.measure(v), nil
}

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

var topologyName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Validate reports every mistake in t at once.
func (t *Topology) Validate() error {
	var errs []error
	if !topologyName.MatchString(t.Name) {
		errs = append(errs, fmt.Errorf("topology name %q: use lower-case letters, digits and '-', starting with a letter", t.Name))
	}
	if len(t.Nodes) == 0 {
		errs = append(errs, fmt.Errorf("topology %s has no nodes", t.Name))
	}
	inputs, models, projections := map[string]bool{}, map[string]bool{}, map[string]bool{}
	indexed := map[*ReadModelNode]bool{}
	for _, n := range t.Nodes {
		if err := n.validate(); err != nil {
			errs = append(errs, fmt.Errorf("topology %s: %w", t.Name, err))
		}
		if rm, own := n.(*ReadModelNode); own {
			if models[rm.Name()] {
				errs = append(errs, fmt.Errorf("topology %s has two read models named %s", t.Name, rm.Name()))
			}
			models[rm.Name()] = true
			continue // runs in goka groups of its own
		}
		if x, ok := n.(*ReadModelIndexNode); ok {
			// Reads the read model's table, which only a read model of
			// this topology fills.
			if x.model != nil && !slices.Contains(t.Nodes, Node(x.model)) {
				errs = append(errs, fmt.Errorf("topology %s: %s: the read model is not a node of the topology; add it", t.Name, x.describe()))
			}
			if x.model != nil && indexed[x.model] {
				errs = append(errs, fmt.Errorf("topology %s indexes read model %s twice; one search index per read model", t.Name, x.model.name))
			}
			indexed[x.model] = true
			continue
		}
		if p, ok := n.(*ProjectionNode); ok {
			// A projection is a consumer group of its own, named after it.
			if projections[p.name] {
				errs = append(errs, fmt.Errorf("topology %s has two projections named %s", t.Name, p.name))
			}
			projections[p.name] = true
			continue
		}
		if inputs[n.Input()] {
			errs = append(errs, fmt.Errorf("topology %s reads %s twice; one node per input topic", t.Name, n.Input()))
		}
		inputs[n.Input()] = true
	}
	return errors.Join(errs...)
}

// String describes the topology, one line per node.
func (t *Topology) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology %s\n", t.Name)
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, "  %s\n", n.describe())
	}
	return b.String()
}
