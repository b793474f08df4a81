package topotest

import (
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
)

// projection folds the events of its topic as the processor's projection
// group does, with the node's own functions: each event is read back as
// the projection reads it from Kafka (its data through its Avro encoding,
// into the struct of its type), keyed with the node's key function, and
// folded into the key's table value with ProjectionNode.Apply, which
// applies each aggregate's event once.
type projection struct {
	node  *engine.Projection
	table map[string][]byte // the group table: key → value
}

// PublishEvents puts events on their topics (Event.Topic) as an Events node
// writes them, and delivers them to the projections reading those topics:
// for a projection whose events another topology derives. An event without
// an ID gets its deterministic one, [topologies.EventID] of its position,
// aggregate and type. Publishing an event again is a redelivery. It fails
// the test if an event cannot be encoded with the Avro schema an Events
// node would register for it.
func (h *Harness) PublishEvents(events ...Event) {
	h.helper.Helper()
	published := make([]Event, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = topologies.EventID(e.Position, e.AggregateID, e.Type)
		}
		if _, _, err := serde.ReadBack(e.Topic, domainEvent(e)); err != nil {
			h.t.Fatalf("topotest: publish %s of %s on %s: %v", e.Type, e.AggregateID, e.Topic, err)
		}
		published[i] = e
	}
	h.eventLog = append(h.eventLog, published...)
	if err := h.fold(published); err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
}

func domainEvent(e Event) *serde.DomainEvent {
	return &serde.DomainEvent{ID: e.ID, Type: e.Type, AggregateID: e.AggregateID, Position: e.Position, OccurredAt: e.OccurredAt, Data: e.Data}
}

// fold delivers events to the projections reading their topics. As the
// processor counts them, each event counts as a change for each projection
// once it is folded, found applied already (also a duplicate) or skipped (a
// type the projection does not declare); one that cannot be read, or whose
// key function returns no key, goes to the dead-letter topic. An error is
// one the processor stops on.
func (h *Harness) fold(events []Event) error {
	for _, e := range events {
		readers := h.readers[e.Topic]
		if len(readers) == 0 {
			continue
		}
		de, fields, err := serde.ReadBack(e.Topic, domainEvent(e))
		if err != nil {
			return fmt.Errorf("read back %s of %s on %s: %w", e.Type, e.AggregateID, e.Topic, err)
		}
		for _, p := range readers {
			n := p.node
			ev, ok, err := n.Read(engine.Recorded{Type: de.Type, AggregateID: de.AggregateID,
				ID: de.ID, Position: de.Position, OccurredAt: de.OccurredAt}, fields)
			if err != nil {
				h.deadLetterEvent(e, fmt.Errorf("projection %s: %w", n.Name, err))
				continue
			}
			if !ok {
				h.stats.Changes++
				continue
			}
			key, err := n.Key(ev)
			if err != nil {
				h.deadLetterEvent(e, fmt.Errorf("projection %s: %w", n.Name, err))
				continue
			}
			h.stats.Changes++
			next, applied, err := n.Apply(p.table[key], ev)
			if err != nil {
				return err
			}
			if !applied {
				h.stats.Duplicates++
				continue
			}
			p.table[key] = next
		}
	}
	return nil
}

func (h *Harness) deadLetterEvent(e Event, err error) {
	h.dead = append(h.dead, DeadLetter{Event: &e, Err: err})
	h.stats.DeadLetters++
}

// projection returns the projection's runtime in the harness, or fails the
// test.
func (h *Harness) projection(name string) *projection {
	h.helper.Helper()
	p := h.projections[name]
	if p == nil {
		h.t.Fatalf("topotest: topology %s has no projection %s (it has: %s)", h.topo.Name, name, strings.Join(sortedKeys(h.projections), ", "))
	}
	return p
}

// ProjectionState returns the state p keeps for key, and whether it keeps
// one (an event was folded into it). It fails the test if p is not a node
// of the harness's topology.
func ProjectionState[S any](h *Harness, p *topologies.ProjectionNode[S], key string) (S, bool) {
	h.helper.Helper()
	var zero S
	value, ok := h.projection(p.Name()).table[key]
	if !ok {
		return zero, false
	}
	s, err := p.State(value)
	if err != nil {
		h.t.Fatalf("topotest: %v", err)
	}
	return s, true
}

// ProjectionStates returns every state of p, by key. It fails the test as
// [ProjectionState] does.
func ProjectionStates[S any](h *Harness, p *topologies.ProjectionNode[S]) map[string]S {
	h.helper.Helper()
	out := map[string]S{}
	for _, key := range sortedKeys(h.projection(p.Name()).table) {
		out[key], _ = ProjectionState(h, p, key)
	}
	return out
}

// ProjectionTable returns the table of p as its group table holds it: each
// key's value (its state as JSON, and the last event applied per
// aggregate), byte for byte, for comparing a rebuilt projection with a live
// one. It fails the test if p is not a node of the harness's topology.
func ProjectionTable[S any](h *Harness, p *topologies.ProjectionNode[S]) map[string][]byte {
	h.helper.Helper()
	out := map[string][]byte{}
	for k, v := range h.projection(p.Name()).table {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
