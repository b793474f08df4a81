package topotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// readModel runs a read model's two stages as its processor does, with the
// node's own stage functions (RouteRoot, RouteChild, RouteRef, Join,
// Apply): a change of the root table goes to the model stage (and, with
// references, to the join stage); a change of a children or reference
// table to the join stage, which keeps who belongs to whom and sends the
// model stage the rows of each document. Messages wait in one queue, first
// in first out, so that the messages of a key arrive in the order sent, as
// on a Kafka partition; every delivered change is run to quiescence before
// the next.
type readModel struct {
	node   *engine.ReadModel
	search []*engine.ReadModelIndex
	tables []*postgresTable

	join  map[string]*engine.JoinState  // the join stage's table
	model map[string]*engine.ModelState // the model stage's table
	queue []message

	updates []update // the updates topic: what the join stage sent the model stage
	states  []state  // the table's topic: every new state of a document
}

// message is a message waiting for a stage: to the join stage when join is
// set, else to the model stage.
type message struct {
	key   string
	join  *engine.JoinMsg
	model *engine.ModelMsg
	rec   Record // the change it follows from
}

type update struct {
	key string
	msg engine.ModelMsg
	rec Record
}

type state struct {
	key string
	st  *engine.ModelState
	rec Record
}

func newReadModel(n *engine.ReadModel) *readModel {
	return &readModel{node: n, join: map[string]*engine.JoinState{}, model: map[string]*engine.ModelState{}}
}

func (m *readModel) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	// The processor dead-letters a change it cannot route, and goes on.
	fail := func(err error) error {
		h.deadLetter(rec, fmt.Errorf("read model %s: change at %s of %s: %w", m.node.Name, ev.Position, ev.TableName(), err))
		return nil
	}
	if ev.Op == change.OpTruncate {
		h.deadLetter(rec, fmt.Errorf("truncate of %s at %s: read model %s keeps rows per partition and does not apply truncates; its rows of %s stay",
			ev.TableName(), ev.Position, m.node.Name, ev.TableName()))
		return nil
	}
	switch {
	case rec.Topic == m.node.Root.Topic:
		model, join, err := m.node.RouteRoot(ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: model.Key, model: &model.Msg, rec: rec})
		if join != nil {
			m.queue = append(m.queue, message{key: join.Key, join: &join.Msg, rec: rec})
		}
	case m.node.IsChildren(rec.Topic):
		routed, err := m.node.RouteChild(rec.Topic, engine.ChildKey(rec.Key), ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: routed.Key, join: &routed.Msg, rec: rec})
	default:
		routed, err := m.node.RouteRef(rec.Topic, ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: routed.Key, join: &routed.Msg, rec: rec})
	}
	return m.drain(h)
}

// drain delivers the queued messages, and those they lead to, until none is
// left. The processor counts each message of the model stage as a change
// (and a duplicate when Apply finds it applied already); the join stage's
// messages count nothing.
func (m *readModel) drain(h *Harness) error {
	for len(m.queue) > 0 {
		msg := m.queue[0]
		m.queue = m.queue[1:]
		if msg.join != nil {
			next, loops, updates, dup := m.node.Join(msg.key, m.join[msg.key], *msg.join)
			if dup {
				continue
			}
			m.join[msg.key] = next
			for _, l := range loops {
				m.queue = append(m.queue, message{key: l.Key, join: &l.Msg, rec: msg.rec})
			}
			for _, u := range updates {
				m.queue = append(m.queue, message{key: u.Key, model: &u.Msg, rec: msg.rec})
				m.updates = append(m.updates, update{key: u.Key, msg: u.Msg, rec: msg.rec})
			}
			continue
		}
		h.stats.Changes++
		next, dup, err := m.node.Apply(msg.key, m.model[msg.key], *msg.model, 0)
		if err != nil {
			return err
		}
		if dup {
			h.stats.Duplicates++
			continue
		}
		m.model[msg.key] = next
		m.states = append(m.states, state{key: msg.key, st: next, rec: msg.rec})
		for _, x := range m.search {
			indexState(h, x, msg.key, next, msg.rec)
		}
		for _, t := range m.tables {
			t.state(h, msg.key, next, msg.rec)
		}
	}
	return nil
}

// replay delivers the updates topic to the model stage, and the table's
// topic to the search index, again.
func (m *readModel) replay(h *Harness) error {
	for _, u := range m.updates {
		m.queue = append(m.queue, message{key: u.key, model: &u.msg, rec: u.rec})
	}
	if err := m.drain(h); err != nil {
		return err
	}
	for _, s := range m.states {
		for _, x := range m.search {
			indexState(h, x, s.key, s.st, s.rec)
		}
		for _, t := range m.tables {
			t.state(h, s.key, s.st, s.rec)
		}
	}
	return nil
}

// indexState applies a new state of the read model document key to the
// search index x, as the processor's search index over a read model does:
// the document is written, or deleted once the read model holds none, with
// the state's Revision as external version, so that a state at or before
// the stored version (or its delete's) changes nothing. A state whose
// document cannot be made goes to the dead-letter topic, with rec, the
// change it follows from.
func indexState(h *Harness, x *engine.ReadModelIndex, key string, st *engine.ModelState, rec Record) {
	h.stats.Changes++
	index := x.Index
	value, exists, err := x.Document(st)
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("search document %s of read model %s: %w", key, x.Model.Name, err))
		return
	}
	doc := &Document{Index: index, ID: key, Position: st.Version, Version: st.SinkVersion(), deleted: !exists}
	if exists {
		if doc.Source, err = json.Marshal(value); err == nil && !bytes.HasPrefix(doc.Source, []byte("{")) {
			err = fmt.Errorf("document %s is not a JSON object; Elasticsearch indexes objects only", key)
		}
		if err != nil {
			h.deadLetter(rec, fmt.Errorf("index read model %s document %s into %s: %w", x.Model.Name, key, index, err))
			return
		}
		doc.Value = value
	}
	if !h.putDocument(doc, func(stored *Document) bool { return stored.Version >= st.SinkVersion() }) {
		h.stats.Duplicates++
	}
}

// readModel returns the read model's runtime in the harness, or fails the
// test.
func (h *Harness) readModel(name string) *readModel {
	h.helper.Helper()
	m := h.models[name]
	if m == nil {
		h.t.Fatalf("topotest: topology %s has no read model %s (it has: %s)", h.topo.Name, name, strings.Join(sortedKeys(h.models), ", "))
	}
	return m
}

// ReadModelState is what a read model keeps for a root key, as its group
// table holds it.
type ReadModelState struct {
	// Document is the document as JSON, nil while the root row is not
	// there (never created, or deleted).
	Document json.RawMessage
	// Version is the latest position of the rows the document is made of.
	Version change.Position
	// Revision counts the changes applied to the document's rows: the
	// version its search index gets.
	Revision int64
	// RootDeleted tells that the root row was deleted: the read model keeps
	// a marker, so that a replay does not bring the document back.
	RootDeleted bool
}

// ReadModelStateOf returns what model keeps for the root key key, and
// whether it keeps anything. It fails the test if model is not a node of
// the harness's topology.
func ReadModelStateOf[V any](h *Harness, model *topologies.ReadModelNode[V], key string) (ReadModelState, bool) {
	h.helper.Helper()
	st := h.readModel(model.Name()).model[key]
	if st == nil {
		return ReadModelState{}, false
	}
	return ReadModelState{Document: st.Document, Version: st.Version, Revision: st.Revision,
		RootDeleted: st.Root != nil && st.Root.Row == nil}, true
}

// ReadModelDocument returns the document of model for the root key key,
// and whether there is one (the root row is there). It fails the test if
// model is not a node of the harness's topology.
func ReadModelDocument[V any](h *Harness, model *topologies.ReadModelNode[V], key string) (V, bool) {
	h.helper.Helper()
	var zero V
	st := h.readModel(model.Name()).model[key]
	if st == nil || st.Document == nil {
		return zero, false
	}
	v, err := model.Document(st.Document)
	if err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
	return v, true
}

// ReadModelDocuments returns every document of model, by root key. It fails
// the test as [ReadModelDocument] does.
func ReadModelDocuments[V any](h *Harness, model *topologies.ReadModelNode[V]) map[string]V {
	h.helper.Helper()
	out := map[string]V{}
	for _, key := range sortedKeys(h.readModel(model.Name()).model) {
		if v, ok := ReadModelDocument(h, model, key); ok {
			out[key] = v
		}
	}
	return out
}
