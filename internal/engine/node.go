package engine

import (
	"errors"
	"fmt"
	"regexp"
)

// Node is one node of a topology, in its runtime form.
type Node interface {
	// Describe says what the node does, in one line (or more, indented).
	Describe() string
	// Validate reports the node's mistakes, all at once.
	Validate() error
	// Run hands the node to rt's method for its kind.
	Run(rt Runtime) error
}

// Runtime runs node kinds: one method per kind. Node.Run calls the method of
// its kind.
type Runtime interface {
	Metrics(*Metrics) error
	Windowed(*Windowed) error
	Events(*Events) error
	SearchIndex(*SearchIndex) error
	ReadModel(*ReadModel) error
	ReadModelIndex(*ReadModelIndex) error
	Projection(*Projection) error
	Postgres(*PostgresTable) error
}

// Name is the form of the names of topologies, read models and
// projections: they name consumer groups and topics.
var Name = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Sinks are what a topology's nodes write to besides Kafka.
type Sinks struct {
	// Redis is needed by metrics, windowed or not.
	Redis bool
	// Indexes are the search indexes, with their mappings ("" for dynamic
	// mapping), in node order.
	Indexes []IndexSpec
	// Tables are the PostgreSQL tables Postgres nodes keep, in node order.
	Tables []*PostgresTable
}

// IndexSpec is a search index a node keeps.
type IndexSpec struct {
	Name, Mapping string
}

// Elasticsearch reports whether the nodes keep a search index.
func (s Sinks) Elasticsearch() bool { return len(s.Indexes) > 0 }

// Postgres reports whether the nodes keep a PostgreSQL table.
func (s Sinks) Postgres() bool { return len(s.Tables) > 0 }

// SinksOf returns what nodes write to besides Kafka.
func SinksOf(nodes []Node) Sinks {
	var c sinkCollector
	for _, n := range nodes {
		n.Run(&c)
	}
	return c.Sinks
}

type sinkCollector struct{ Sinks }

func (c *sinkCollector) Metrics(*Metrics) error   { c.Redis = true; return nil }
func (c *sinkCollector) Windowed(*Windowed) error { c.Redis = true; return nil }
func (c *sinkCollector) Events(*Events) error     { return nil }
func (c *sinkCollector) SearchIndex(n *SearchIndex) error {
	c.Indexes = append(c.Indexes, IndexSpec{n.Index, n.Mapping})
	return nil
}
func (c *sinkCollector) ReadModel(*ReadModel) error { return nil }
func (c *sinkCollector) ReadModelIndex(n *ReadModelIndex) error {
	c.Indexes = append(c.Indexes, IndexSpec{n.Index, n.Mapping})
	return nil
}
func (c *sinkCollector) Projection(*Projection) error { return nil }
func (c *sinkCollector) Postgres(n *PostgresTable) error {
	c.Tables = append(c.Tables, n)
	return nil
}

// ValidateTopology reports every mistake of a topology named name with
// nodes, at once: each node's own, and those between nodes (two Metrics or
// two Events nodes of one change topic, or two Windowed nodes of one with
// the same windows, which would share the state they keep per row; two read models or projections of one name; a search index
// over a read model the topology does not have, or two over one).
func ValidateTopology(name string, nodes []Node) error {
	var errs []error
	if !Name.MatchString(name) {
		errs = append(errs, fmt.Errorf("topology name %q: use lower-case letters, digits and '-', starting with a letter", name))
	}
	if len(nodes) == 0 {
		errs = append(errs, fmt.Errorf("topology %s has no nodes", name))
	}
	v := &validator{topology: name, inputs: map[string]string{}, models: map[*ReadModel]bool{},
		modelNames: map[string]bool{}, projections: map[string]bool{}, indexed: map[*ReadModel]bool{}, targets: map[string]bool{}}
	for _, n := range nodes {
		if err := n.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("topology %s: %w", name, err))
		}
		n.Run(v)
	}
	if _, err := DebeziumTopics(nodes); err != nil {
		errs = append(errs, fmt.Errorf("topology %s: %w", name, err))
	}
	for _, x := range v.searches {
		if x.Model != nil && !v.models[x.Model] {
			errs = append(errs, fmt.Errorf("topology %s: %s: the read model is not a node of the topology; add it", name, x.Describe()))
		}
	}
	for _, x := range v.tables {
		if x.Model != nil && !v.models[x.Model] {
			errs = append(errs, fmt.Errorf("topology %s: %s: the read model is not a node of the topology; add it", name, x.Describe()))
		}
	}
	return errors.Join(append(errs, v.errs...)...)
}

// validator checks what no two nodes of a topology may share.
type validator struct {
	topology    string
	inputs      map[string]string // kind+topic → the kind, read by the topology's own group
	models      map[*ReadModel]bool
	modelNames  map[string]bool
	projections map[string]bool
	indexed     map[*ReadModel]bool
	searches    []*ReadModelIndex
	tables      []*PostgresTable
	targets     map[string]bool
	errs        []error
}

// input records that a node of kind reads topic: one of each kind that
// keeps state per row.
func (v *validator) input(kind, topic string) error {
	if _, twice := v.inputs[kind+" "+topic]; twice {
		v.errs = append(v.errs, fmt.Errorf("topology %s has two %s nodes of %s; they would share the state kept per row: make them one, or put one in another topology", v.topology, kind, topic))
	}
	v.inputs[kind+" "+topic] = kind
	return nil
}

func (v *validator) Metrics(n *Metrics) error { return v.input("Metrics", n.Input) }

// Windowed nodes of one table keep their rows apart when their windows'
// size or hop differ (see [Windowed.RowsKeyName]).
func (v *validator) Windowed(n *Windowed) error {
	return v.input("Windowed", n.Input+" with "+shortDuration(n.Windows.Size)+" windows every "+shortDuration(n.Windows.Hop))
}
func (v *validator) Events(n *Events) error           { return v.input("Events", n.Input) }
func (v *validator) SearchIndex(n *SearchIndex) error { return nil }

// ReadModel runs in consumer groups of its own.
func (v *validator) ReadModel(n *ReadModel) error {
	if v.modelNames[n.Name] {
		v.errs = append(v.errs, fmt.Errorf("topology %s has two read models named %s", v.topology, n.Name))
	}
	v.modelNames[n.Name], v.models[n] = true, true
	return nil
}

// ReadModelIndex reads the read model's table, which only a read model of
// the topology fills.
func (v *validator) ReadModelIndex(n *ReadModelIndex) error {
	if n.Model != nil && v.indexed[n.Model] {
		v.errs = append(v.errs, fmt.Errorf("topology %s indexes read model %s twice; one search index per read model", v.topology, n.Model.Name))
	}
	v.indexed[n.Model] = true
	v.searches = append(v.searches, n)
	return nil
}

// Postgres keeps a table no other node of the topology may write.
func (v *validator) Postgres(n *PostgresTable) error {
	if v.targets[n.Target] {
		v.errs = append(v.errs, fmt.Errorf("topology %s has two postgres tables %s; one node per table", v.topology, n.Target))
	}
	v.targets[n.Target] = true
	v.tables = append(v.tables, n)
	return nil
}

// Projection is a consumer group of its own, named after it.
func (v *validator) Projection(n *Projection) error {
	if v.projections[n.Name] {
		v.errs = append(v.errs, fmt.Errorf("topology %s has two projections named %s", v.topology, n.Name))
	}
	v.projections[n.Name] = true
	return nil
}
