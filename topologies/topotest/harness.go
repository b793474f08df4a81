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
	nodes  map[string]node // by input topic

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
	h := &Harness{t: t, helper: noHelper{}, topo: topo, nodes: map[string]node{},
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
			h.nodes[n.Input()] = metricsNode{n}
		case *topologies.EventsNode:
			h.nodes[n.Input()] = &eventsNode{node: n, rows: map[string]rowState{}}
		case *topologies.IndexNode:
			h.nodes[n.Input()] = indexNode{n}
		default:
			errs = append(errs, fmt.Errorf("node kind %T is not supported by topotest yet; test it against the real services", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("topotest: topology %s: %v", topo.Name, err)
	}
	return h
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

// Replay delivers every record the feeds wrote again, in order, as a
// processor reading its topics from the beginning would.
func (h *Harness) Replay() {
	h.helper.Helper()
	h.Redeliver(h.history...)
}

// deliver hands rec to the node reading its topic.
func (h *Harness) deliver(rec Record) error {
	n, ok := h.nodes[rec.Topic]
	if !ok {
		return fmt.Errorf("topology %s reads no topic %s (it reads %s)", h.topo.Name, rec.Topic, strings.Join(h.inputs(), ", "))
	}
	return n.apply(h, rec)
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
	Record Record
	Err    error
}

// DeadLetters returns the changes set aside so far, in order.
func (h *Harness) DeadLetters() []DeadLetter { return append([]DeadLetter(nil), h.dead...) }

func (h *Harness) deadLetter(rec Record, err error) {
	h.dead = append(h.dead, DeadLetter{Record: rec, Err: err})
	h.stats.DeadLetters++
}
