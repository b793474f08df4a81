package topotest

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// T is what the harness needs of a test: *testing.T, *testing.B and
// *testing.F have it. The harness calls Fatalf when the topology cannot
// handle a change the way a processor would stop on it, and when it is
// misused; it calls Helper, if T has it, so that failures point at the test.
type T interface {
	Fatalf(format string, args ...any)
}

type helper interface{ Helper() }

type noHelper struct{}

func (noHelper) Helper() {}

// Harness runs one topology in memory: changes fed through [Table] (or
// delivered again with [Harness.Redeliver]) go to the node that reads their
// topic, and what the processor would write to its sinks is kept for the
// test to read. A Harness is not safe for concurrent use.
type Harness struct {
	t      T
	helper helper
	topo   *topologies.Topology
	nodes  map[string][]node // by input topic

	models      map[string]*readModel    // by name
	projections map[string]*projection   // by name
	readers     map[string][]*projection // by event topic
	eventLog    []Event                  // every event on the event topics, in order

	history  []Record        // what the feeds wrote, in order
	last     change.Position // the latest position fed
	snapshot *change.Position
	current  map[string]map[string]change.Row // topic → row identity → the row as the database holds it

	metrics metricStore
	windows windowStore
	events  []Event
	docs    map[string]map[string]*Document // index → id → document (Deleted ones are tombstones)
	tables  map[string]*postgresTable       // by target
	dead    []DeadLetter
	stats   Stats
}

// node is a node of the topology, applying the changes of its input topic
// as its processor does. An error is one the processor stops on.
type node interface {
	apply(h *Harness, rec Record) error
}

// New returns a harness running topo. It fails the test if topo does not
// validate, or has a node kind the harness cannot run.
func New(t T, topo *topologies.Topology) *Harness {
	h := &Harness{t: t, helper: noHelper{}, topo: topo, nodes: map[string][]node{},
		models: map[string]*readModel{}, projections: map[string]*projection{}, readers: map[string][]*projection{},
		current: map[string]map[string]change.Row{}, metrics: newMetricStore(), windows: newWindowStore(), docs: map[string]map[string]*Document{},
		tables: map[string]*postgresTable{}}
	if th, ok := t.(helper); ok {
		h.helper = th
	}
	h.helper.Helper()
	if err := topo.Validate(); err != nil {
		t.Fatalf("topotest: %v", err)
	}
	b := &builder{h: h}
	for _, n := range topo.Engine() {
		n.Run(b)
	}
	// Validate made sure each search index's and table's read model is a
	// node of topo.
	for _, x := range b.searches {
		m := h.models[x.Model.Name]
		m.search = append(m.search, x)
	}
	for _, t := range b.tables {
		m := h.models[t.node.Model.Name]
		m.tables = append(m.tables, t)
	}
	return h
}

// builder adds each node of a topology to the harness, as the runtime of
// its kind.
type builder struct {
	h        *Harness
	searches []*engine.ReadModelIndex
	tables   []*postgresTable // over read models
}

func (b *builder) Metrics(n *engine.Metrics) error {
	b.h.add(n.Input, metricsNode{n})
	return nil
}

func (b *builder) Windowed(n *engine.Windowed) error {
	b.h.add(n.Input, windowedNode{n})
	return nil
}

func (b *builder) Events(n *engine.Events) error {
	b.h.add(n.Input, &eventsNode{node: n, rows: map[string]*engine.RowState{}})
	return nil
}

func (b *builder) SearchIndex(n *engine.SearchIndex) error {
	b.h.add(n.Input, indexNode{n})
	return nil
}

func (b *builder) ReadModel(n *engine.ReadModel) error {
	m := newReadModel(n)
	b.h.models[n.Name] = m
	for _, topic := range n.Inputs() {
		b.h.add(topic, m)
	}
	return nil
}

func (b *builder) ReadModelIndex(n *engine.ReadModelIndex) error {
	b.searches = append(b.searches, n)
	return nil
}

func (b *builder) Postgres(n *engine.PostgresTable) error {
	t := newPostgresTable(n)
	b.h.tables[n.Target] = t
	if n.Model != nil {
		b.tables = append(b.tables, t)
	} else {
		b.h.add(n.Input, t)
	}
	return nil
}

func (b *builder) Projection(n *engine.Projection) error {
	p := &projection{node: n, table: map[string][]byte{}}
	b.h.projections[n.Name] = p
	b.h.readers[n.Topic] = append(b.h.readers[n.Topic], p)
	return nil
}

func (h *Harness) add(topic string, n node) {
	h.nodes[topic] = append(h.nodes[topic], n)
}

// Record is one change record on a table's topic, as capture writes it: the
// row's key columns (the record's Kafka key) and the change envelope (nil
// for a tombstone).
type Record struct {
	Topic string
	Key   change.Row
	Event *change.Event
}

// clone copies r's envelope and rows, so that altering one copy leaves the
// other as it was.
func (r Record) clone() Record {
	r.Key = maps.Clone(r.Key)
	if r.Event != nil {
		ev := *r.Event
		ev.Before, ev.After = maps.Clone(ev.Before), maps.Clone(ev.After)
		r.Event = &ev
	}
	return r
}

// Redeliver delivers records again, as Kafka does after a consumer crashed
// before committing them: typically ones a feed returned. Each goes to the
// node reading its topic with its own position, so a topology that applies
// changes at most once changes nothing. A Record built or altered by hand
// (a column set to change.Unavailable, say) is delivered as it is.
func (h *Harness) Redeliver(records ...Record) {
	h.helper.Helper()
	for _, rec := range records {
		if err := h.deliver(rec.clone()); err != nil {
			h.t.Fatalf("topotest: %v", err)
		}
	}
}

// Replay delivers everything the topology's groups read again, in order, as
// processors whose consumer groups were reset to the beginning would read it
// (their state kept): every record the feeds wrote; then, for each read
// model, every message its join stage sent its model stage (the updates
// topic) and every state of its documents to its search index (the read
// model's table topic); then every event on the event topics (emitted by
// the topology's Events nodes or published with [Harness.PublishEvents]) to
// the projections reading them. The join stage's loop messages that tell a
// referenced row which documents joined or left it are not sent again.
func (h *Harness) Replay() {
	h.helper.Helper()
	h.Redeliver(h.history...)
	for _, name := range sortedKeys(h.models) {
		if err := h.models[name].replay(h); err != nil {
			h.t.Fatalf("topotest: %v", err)
		}
	}
	if err := h.fold(h.eventLog); err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
}

// deliver hands rec to the nodes reading its topic.
func (h *Harness) deliver(rec Record) error {
	nodes, ok := h.nodes[rec.Topic]
	if !ok {
		return fmt.Errorf("topology %s reads no topic %s (it reads %s)", h.topo.Name, rec.Topic, strings.Join(h.inputs(), ", "))
	}
	for _, n := range nodes {
		if err := n.apply(h, rec); err != nil {
			return err
		}
	}
	return nil
}

func (h *Harness) inputs() []string {
	in := make([]string, 0, len(h.nodes))
	for topic := range h.nodes {
		in = append(in, topic)
	}
	sort.Strings(in)
	return in
}

// must returns rec, or fails the test with err.
func (h *Harness) must(rec Record, err error) Record {
	h.helper.Helper()
	if err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
	return rec
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Stats counts what the harness's nodes did, as processors.Stats counts it
// for a processor.
type Stats struct {
	// Changes is how many change events the nodes handled.
	Changes int64
	// Duplicates is how many of them a node had applied already, and so
	// changed nothing.
	Duplicates int64
	// DeadLetters is how many went to the dead-letter topic.
	DeadLetters int64
	// Late is how many changes a Windowed node applied late: the row's new
	// version fell in windows that had closed, and counts in none of them.
	Late int64
	// Compacted is how many markers of deleted rows [Harness.CompactMarkers]
	// dropped.
	Compacted int64
}

// Stats returns the harness's counters.
func (h *Harness) Stats() Stats { return h.stats }

// DeadLetter is a change a node could not apply and set aside, as a
// processor sends it to its dead-letter topic and goes on.
type DeadLetter struct {
	// Record is the change set aside; for a read model document that could
	// not be indexed, the change that led to its state.
	Record Record
	// Event is, instead of Record, the event a projection set aside.
	Event *Event
	Err   error
}

// DeadLetters returns the changes set aside so far, in order.
func (h *Harness) DeadLetters() []DeadLetter { return append([]DeadLetter(nil), h.dead...) }

func (h *Harness) deadLetter(rec Record, err error) {
	h.dead = append(h.dead, DeadLetter{Record: rec, Err: err})
	h.stats.DeadLetters++
}
