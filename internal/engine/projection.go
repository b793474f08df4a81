package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// Recorded is a domain event as a projection reads it back from an event
// topic: its type, aggregate, id, position and time as the [Events] node gave
// them, and its data decoded into the Go type of its type.
type Recorded struct {
	Type        string
	AggregateID string
	ID          string
	Position    change.Position
	OccurredAt  time.Time
	Data        any
}

// Projection folds the events of an event topic into a state per key, kept
// in a table of its own ([ProjectionGroup]).
type Projection struct {
	Name, Topic, StateType string
	// Handlers are the projection's event types, by name: how to read one,
	// key it and fold it. Events of other types are skipped.
	Handlers map[string]Handler
	// State decodes a stored state into the user's state type.
	State func(json.RawMessage) (any, error)
	Errs  []error
}

// Handler reads, keys and folds the events of one type.
type Handler struct {
	// Decode reads an event's fields, by name as Avro decodes them, into
	// its data type.
	Decode func(fields map[string]any) (any, error)
	// Key is the projection key of an event's data.
	Key func(data any) string
	// Fold returns the state after an event.
	Fold func(state json.RawMessage, ev Recorded) (json.RawMessage, error)
	// Deletes tells that an event of the type deletes its aggregate (an
	// OrderDeleted): what the table keeps of the aggregate after it is a
	// marker, which [Projection.Compact] drops once it is old enough.
	Deletes bool
}

// Describe implements Node.
func (n *Projection) Describe() string {
	types := slices.Sorted(maps.Keys(n.Handlers))
	return fmt.Sprintf("projection %s of %s (%s) into %s per key", n.Name, n.Topic, strings.Join(types, ", "), n.StateType)
}

// Validate implements Node.
func (n *Projection) Validate() error {
	if len(n.Errs) > 0 {
		return fmt.Errorf("projection %s of %s: %w", n.Name, n.Topic, errors.Join(n.Errs...))
	}
	return nil
}

// Run implements Node.
func (n *Projection) Run(rt Runtime) error { return rt.Projection(n) }

// Read returns ev with its Data decoded from fields, the event's fields by
// name as Avro decodes them (serde.Decoder.DecodeEventRecord). ok is false
// for an event of a type the projection has no handler for: it skips it.
func (n *Projection) Read(ev Recorded, fields map[string]any) (Recorded, bool, error) {
	if err := n.Validate(); err != nil {
		return ev, false, err
	}
	h, ok := n.Handlers[ev.Type]
	if !ok {
		return ev, false, nil
	}
	data, err := h.Decode(fields)
	if err != nil {
		return ev, true, fmt.Errorf("projection %s: %w", n.Name, err)
	}
	ev.Data = data
	return ev, true, nil
}

// Key returns the projection key of ev, an event Read returned.
func (n *Projection) Key(ev Recorded) (string, error) {
	h, ok := n.Handlers[ev.Type]
	if !ok {
		return "", fmt.Errorf("projection %s has no handler for %s events", n.Name, ev.Type)
	}
	k := h.Key(ev.Data)
	if k == "" {
		return "", fmt.Errorf("the key function returned an empty key for %s of %s", ev.Type, ev.AggregateID)
	}
	return k, nil
}

// projectionValue is what a projection's table holds per key.
type projectionValue struct {
	State json.RawMessage `json:"state"`
	// Applied is, by aggregate id, the last event folded in.
	Applied map[string]appliedEvents `json:"applied"`
}

// appliedEvents are the events applied at an aggregate's last position: one
// change can derive several events of an aggregate, of different types.
type appliedEvents struct {
	Position change.Position `json:"position"`
	Types    []string        `json:"types"`
	// Deleted marks an aggregate an event of a Deletes handler ended, At
	// being that event's time (Unix ms).
	Deleted bool  `json:"deleted,omitempty"`
	At      int64 `json:"at,omitempty"`
}

// Apply folds ev into stored, the table value of ev's key (nil for a key that
// has none yet), and returns the new value. When the value holds ev already
// (its aggregate's last applied event is at a later position, or at the same
// position and of the same type) it returns applied false and next nil: the
// table stays as it is. Apply is a pure function.
func (n *Projection) Apply(stored []byte, ev Recorded) (next []byte, applied bool, err error) {
	if err := n.Validate(); err != nil {
		return nil, false, err
	}
	var v projectionValue
	if len(stored) > 0 {
		if err := json.Unmarshal(stored, &v); err != nil {
			return nil, false, fmt.Errorf("projection %s: decode table value: %w", n.Name, err)
		}
	}
	last, seen := v.Applied[ev.AggregateID]
	at := ev.Position.Compare(last.Position)
	if seen && (at < 0 || at == 0 && slices.Contains(last.Types, ev.Type)) {
		return nil, false, nil
	}
	h, ok := n.Handlers[ev.Type]
	if !ok {
		return nil, false, fmt.Errorf("projection %s has no handler for %s events", n.Name, ev.Type)
	}
	if v.State, err = h.Fold(v.State, ev); err != nil {
		return nil, false, fmt.Errorf("projection %s: %w", n.Name, err)
	}
	if seen && at == 0 {
		last.Types = slices.Clone(last.Types)
		last.Types = append(last.Types, ev.Type)
		slices.Sort(last.Types)
	} else {
		last = appliedEvents{Position: ev.Position, Types: []string{ev.Type}}
	}
	if h.Deletes {
		last.Deleted, last.At = true, ev.OccurredAt.UnixMilli()
	}
	if v.Applied == nil {
		v.Applied = map[string]appliedEvents{}
	}
	v.Applied[ev.AggregateID] = last
	next, err = json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("projection %s: encode table value: %w", n.Name, err)
	}
	return next, true, nil
}

// StateOf returns the state (an S of the user's projection) a table value
// of the projection holds.
func (n *Projection) StateOf(value []byte) (any, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var v projectionValue
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, fmt.Errorf("projection %s: decode table value: %w", n.Name, err)
	}
	s, err := n.State(v.State)
	if err != nil {
		return nil, fmt.Errorf("projection %s: decode state as %s: %w", n.Name, n.StateType, err)
	}
	return s, nil
}
