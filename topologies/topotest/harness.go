package topotest

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/cdcflow/cdcflow/change"
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
	events  []Event
	docs    map[string]map[string]*Document // index → id → document (Deleted ones are tombstones)
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
		current: map[string]map[string]change.Row{}, metrics: newMetricStore(), docs: map[string]map[string]*Document{}}
	if th, ok := t.(helper); ok {
		h.helper = th
	}
	h.helper.Helper()
	if err := topo.Validate(); err != nil {
		t.Fatalf("topotest: %v", err)
	}
	var errs []error
	for _, n := range topo.Nodes {
		switch n := n.(type) {
		case *topologies.MetricsNode:
			h.add(n.Input(), metricsNode{n})
		case *topologies.EventsNode:
			h.add(n.Input(), &eventsNode{node: n, rows: map[string]rowState{}})
		case *topologies.IndexNode:
			h.add(n.Input(), indexNode{n})
		case *topologies.ReadModelNode:
			m := newReadModel(n)
			h.models[n.Name()] = m
			for _, topic := range n.Inputs() {
				h.add(topic, m)
			}
		case *topologies.ReadModelIndexNode:
			// Validate made sure its read model is a node of topo.
		case *topologies.ProjectionNode:
			p := &projection{node: n, table: map[string][]byte{}}
			h.projections[n.Name()] = p
			h.readers[n.Input()] = append(h.readers[n.Input()], p)
		default:
			errs = append(errs, fmt.Errorf("node kind %T is not supported by topotest yet; test it against the real services", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("topotest: topology %s: %v", topo.Name, err)
	}
	for _, n := range topo.Nodes {
		if x, ok := n.(*topologies.ReadModelIndexNode); ok {
			m := h.models[x.ReadModel().Name()]
			m.search = append(m.search, x)
		}
	}
	return h
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
// model, every message its index stage sent its model stage (the updates
// topic) and every state of its documents to its search index (the read
// model's table topic); then every event on the event topics (emitted by
// the topology's Events nodes or published with [Harness.PublishEvents]) to
// the projections reading them. The index stage's loop messages that tell a
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

// identity names a row by its topic and key columns, in name order, as the
// processors do.
func identity(topic string, key change.Row) string {
	var b strings.Builder
	b.WriteString(topic)
	for _, name := range sortedKeys(key) {
		fmt.Fprintf(&b, "|%s=%v", name, key[name])
	}
	return b.String()
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
