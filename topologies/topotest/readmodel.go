package topotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

// readModel runs a read model's two stages as its processor does, with the
// node's own stage functions (RouteRoot, RouteChild, RouteRef, Index,
// Apply): a change of the root table goes to the model stage (and, with
// references, to the index stage); a change of a children or reference
// table to the index stage, which keeps who belongs to whom and sends the
// model stage the rows of each document. Messages wait in one queue, first
// in first out, so that the messages of a key arrive in the order sent, as
// on a Kafka partition; every delivered change is run to quiescence before
// the next.
type readModel struct {
	node   *topologies.ReadModelNode
	search []*topologies.ReadModelIndexNode

	index map[string]*topologies.IndexState // the index stage's table
	model map[string]*topologies.ModelState // the model stage's table
	queue []message

	updates []update // the updates topic: what the index stage sent the model stage
	states  []state  // the table's topic: every new state of a document
}

// message is a message waiting for a stage: to the index stage when index
// is set, else to the model stage.
type message struct {
	key   string
	index *topologies.IndexMsg
	model *topologies.ModelMsg
	rec   Record // the change it follows from
}

type update struct {
	key string
	msg topologies.ModelMsg
	rec Record
}

type state struct {
	key string
	st  *topologies.ModelState
	rec Record
}

func newReadModel(n *topologies.ReadModelNode) *readModel {
	return &readModel{node: n, index: map[string]*topologies.IndexState{}, model: map[string]*topologies.ModelState{}}
}

func (m *readModel) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	fail := func(err error) error {
		return fmt.Errorf("read model %s: change at %s of %s: %w", m.node.Name(), ev.Position, ev.TableName(), err)
	}
	switch {
	case rec.Topic == m.node.Input():
		model, index, err := m.node.RouteRoot(ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: model.Key, model: &model.Msg, rec: rec})
		if index != nil {
			m.queue = append(m.queue, message{key: index.Key, index: &index.Msg, rec: rec})
		}
	case m.node.IsChildren(rec.Topic):
		routed, err := m.node.RouteChild(rec.Topic, keyText(rec.Key), ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: routed.Key, index: &routed.Msg, rec: rec})
	default:
		routed, err := m.node.RouteRef(rec.Topic, ev)
		if err != nil {
			return fail(err)
		}
		m.queue = append(m.queue, message{key: routed.Key, index: &routed.Msg, rec: rec})
	}
	return m.drain(h)
}

// keyText names a row by its key columns in name order, as the processor
// names a child row: "id=7", "line=2,order_id=7".
func keyText(key change.Row) string {
	names := sortedKeys(key)
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = fmt.Sprintf("%s=%v", n, key[n])
	}
	return strings.Join(cols, ",")
}

// drain delivers the queued messages, and those they lead to, until none is
// left. The processor counts each message of the model stage as a change
// (and a duplicate when Apply finds it applied already); the index stage's
// messages count nothing.
func (m *readModel) drain(h *Harness) error {
	for len(m.queue) > 0 {
		msg := m.queue[0]
		m.queue = m.queue[1:]
		if msg.index != nil {
			next, loops, updates, dup := m.node.Index(msg.key, m.index[msg.key], *msg.index)
			if dup {
				continue
			}
			m.index[msg.key] = next
			for _, l := range loops {
				m.queue = append(m.queue, message{key: l.Key, index: &l.Msg, rec: msg.rec})
			}
			for _, u := range updates {
				m.queue = append(m.queue, message{key: u.Key, model: &u.Msg, rec: msg.rec})
				m.updates = append(m.updates, update{key: u.Key, msg: u.Msg, rec: msg.rec})
			}
			continue
		}
		h.stats.Changes++
		next, dup, err := m.node.Apply(msg.key, m.model[msg.key], *msg.model)
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
func indexState(h *Harness, x *topologies.ReadModelIndexNode, key string, st *topologies.ModelState, rec Record) {
	h.stats.Changes++
	index := x.IndexName()
	value, exists, err := x.Document(st)
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("search document %s of read model %s: %w", key, x.ReadModel().Name(), err))
		return
	}
	doc := &Document{Index: index, ID: key, Position: st.Version, Version: st.Revision, deleted: !exists}
	if exists {
		if doc.Source, err = json.Marshal(value); err == nil && !bytes.HasPrefix(doc.Source, []byte("{")) {
			err = fmt.Errorf("document %s is not a JSON object; Elasticsearch indexes objects only", key)
		}
		if err != nil {
			h.deadLetter(rec, fmt.Errorf("index read model %s document %s into %s: %w", x.ReadModel().Name(), key, index, err))
			return
		}
		doc.Value = value
	}
	if !h.putDocument(doc, func(stored *Document) bool { return stored.Version >= st.Revision }) {
		h.stats.Duplicates++
	}
}

// readModel returns the read model name, or fails the test.
func (h *Harness) readModel(name string) *readModel {
	h.helper.Helper()
	m := h.models[name]
	if m == nil {
		h.t.Fatalf("topotest: topology %s has no read model %s (it has: %s)", h.topo.Name, name, strings.Join(sortedKeys(h.models), ", "))
	}
	return m
}

// ReadModelState returns what the read model name keeps for the root key
// key, as its group table holds it: the rows the document is made of, its
// Revision and the document as JSON; nil if it keeps nothing for key. It
// fails the test if the topology has no such read model. The state is the
// harness's: do not alter it.
func (h *Harness) ReadModelState(name, key string) *topologies.ModelState {
	h.helper.Helper()
	return h.readModel(name).model[key]
}

// ReadModelDocument returns the document of the read model name for the
// root key key, and whether there is one (the root row is there). It fails
// the test if the topology has no such read model, or if its documents are
// not of type V.
func ReadModelDocument[V any](h *Harness, name, key string) (V, bool) {
	h.helper.Helper()
	var zero V
	m := h.readModel(name)
	doc, ok, err := m.node.Document(m.model[key])
	if err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
	if !ok {
		return zero, false
	}
	v, isV := doc.(*V)
	if !isV {
		h.t.Fatalf("topotest: read model %s keeps documents of type %T, not %T", name, doc, &zero)
	}
	return *v, true
}

// ReadModelDocuments returns every document of the read model name, by root
// key. It fails the test as [ReadModelDocument] does.
func ReadModelDocuments[V any](h *Harness, name string) map[string]V {
	h.helper.Helper()
	out := map[string]V{}
	for _, key := range sortedKeys(h.readModel(name).model) {
		if v, ok := ReadModelDocument[V](h, name, key); ok {
			out[key] = v
		}
	}
	return out
}
