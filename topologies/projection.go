package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// Recorded is a domain event of type E as a projection reads it back from
// its event topic: its data, and the aggregate, id, position and time the
// [Events] node gave it.
type Recorded[E any] struct {
	Data        E
	AggregateID string
	ID          string
	Position    change.Position
	OccurredAt  time.Time
}

// Handler folds the events of one type into a projection's state S. Build
// it with [On].
type Handler[S any] struct {
	typ     reflect.Type
	key     func(data any) string
	fold    func(S, engine.Recorded) S
	deletes bool
	err     error
}

// On declares how a projection handles the events whose data is an E: key
// tells the projection key an event belongs to (a customer id taken from an
// order's event, say), and fold returns the state after it. Both must be
// pure functions of their arguments.
func On[S, E any](key func(E) string, fold func(S, Recorded[E]) S) Handler[S] {
	h := Handler[S]{typ: reflect.TypeFor[E]()}
	if key == nil || fold == nil {
		h.err = fmt.Errorf("the key or fold function of %s events is nil", h.typ.Name())
		return h
	}
	h.key = func(data any) string { return key(data.(E)) }
	h.fold = func(s S, ev engine.Recorded) S {
		return fold(s, Recorded[E]{Data: ev.Data.(E), AggregateID: ev.AggregateID, ID: ev.ID, Position: ev.Position, OccurredAt: ev.OccurredAt})
	}
	return h
}

// OnDelete declares, as [On] does, how a projection handles the events whose
// data is an E, events that delete their aggregate (an OrderDeleted): after
// one, the projection keeps of the aggregate only a marker (the position of
// its last event, so that a redelivered or replayed older event changes
// nothing), and drops it once the event is older than the processor's
// marker retention (processors.Config.MarkerRetention, 7 days by default).
// An event of the aggregate older than that, delivered after the marker is
// gone, is folded again.
func OnDelete[S, E any](key func(E) string, fold func(S, Recorded[E]) S) Handler[S] {
	h := On(key, fold)
	h.deletes = true
	return h
}

// ProjectionNode folds the events of an event topic into a state of type S
// per key, kept in a table of its own. Build it with [Projection].
type ProjectionNode[S any] struct{ e *engine.Projection }

// Projection declares the event-sourcing projection name: it reads the
// events of events that handlers handle ([On], one per event type, each a
// type events declares) and folds them, key by key, into a state of type S;
// it skips events of other types. The first event of a key is folded into
// S's zero value.
//
// Every event of one aggregate must have the same key, since an aggregate's
// events are ordered only among themselves. Each aggregate's events reach
// their handler in position order, exactly once: the table keeps, next to the
// state, the position of the last event applied for every aggregate folded
// into the key (and the types of the events applied at that position), and
// an event at or before it (a redelivery or a replay) changes nothing. These
// entries stay after an aggregate's last event, so the state of a key grows
// with the number of its aggregates, except for the aggregates an event of
// an [OnDelete] handler deleted: their entries go once the delete is older
// than the processor's marker retention. Events of different
// aggregates, though, interleave in any order, and a rebuild may interleave
// them differently: for a rebuilt table to equal the live one byte for byte,
// the state must not depend on that interleaving. Keep per-aggregate facts
// (the orders example keeps each order's status and amount) and what is
// computed from them.
//
// States are stored as JSON (encoding/json, which sorts map keys), so S must
// marshal and unmarshal to the same value, and equal states are equal bytes.
// The processor runs each projection as a consumer group of its own, so it
// can be rebuilt from the start of the event topic under a new group.
func Projection[S any](name string, events EventTopic, handlers ...Handler[S]) *ProjectionNode[S] {
	n := &engine.Projection{Name: name, Topic: string(events.Topic), StateType: typeName[S](), Handlers: map[string]engine.Handler{}}
	if !engine.Name.MatchString(name) {
		n.Errs = append(n.Errs, fmt.Errorf("projection name %q: use lower-case letters, digits and '-', starting with a letter (it names the projection's consumer group)", name))
	}
	n.Errs = append(n.Errs, events.errs...)
	if len(handlers) == 0 {
		n.Errs = append(n.Errs, errors.New("no handlers: declare one with topologies.On for each event type the projection folds"))
	}
	if _, err := json.Marshal(*new(S)); err != nil {
		n.Errs = append(n.Errs, fmt.Errorf("state type %s cannot be stored as JSON: %w", n.StateType, err))
	}
	decode := func(raw json.RawMessage) (S, error) {
		var s S
		if len(raw) == 0 {
			return s, nil
		}
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	for _, h := range handlers {
		name := h.typ.Name()
		et, declared := events.types[name]
		switch {
		case h.err != nil:
			n.Errs = append(n.Errs, h.err)
			continue
		case !declared || et.typ != h.typ:
			n.Errs = append(n.Errs, fmt.Errorf("a handler of %s events, which event topic %s does not declare; add %s{} to its EventTopicOf", h.typ, events.Topic, name))
			continue
		case n.Handlers[name].Fold != nil:
			n.Errs = append(n.Errs, fmt.Errorf("two handlers of %s events", name))
			continue
		}
		fold := h.fold
		n.Handlers[name] = engine.Handler{
			Decode:  et.decode,
			Key:     h.key,
			Deletes: h.deletes,
			Fold: func(raw json.RawMessage, ev engine.Recorded) (json.RawMessage, error) {
				s, err := decode(raw)
				if err != nil {
					return nil, fmt.Errorf("decode state as %s: %w", n.StateType, err)
				}
				return json.Marshal(fold(s, ev))
			},
		}
	}
	n.State = func(raw json.RawMessage) (any, error) { return decode(raw) }
	return &ProjectionNode[S]{n}
}

// Name returns the projection's name.
func (n *ProjectionNode[S]) Name() string { return n.e.Name }

// Engine implements [Node].
func (n *ProjectionNode[S]) Engine() engine.Node { return n.e }

// State returns the state a value of the projection's table holds.
func (n *ProjectionNode[S]) State(value []byte) (S, error) {
	s, err := n.e.StateOf(value)
	if err != nil {
		var zero S
		return zero, err
	}
	return s.(S), nil
}
