package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// RecordedEvent is a domain event as a projection reads it back from an
// event topic: the [Event] with its Data decoded into the struct of its type,
// and the id, position and time the [Events] node gave it.
type RecordedEvent struct {
	Event
	ID         string
	Position   change.Position
	OccurredAt time.Time
}

// EventTopic is an event topic read back as typed events. Build it with
// [EventTopicOf].
type EventTopic struct {
	Topic string
	types map[string]eventType
	errs  []error
}

type eventType struct {
	typ    reflect.Type
	fields []rowField
}

// EventTopicOf declares the event topic topic, as an [Events] node writes
// it, read back as Go structs: data holds one value of each event data type,
// and an event whose type is the name of one of them (OrderPaid for a struct
// type named OrderPaid) decodes into that struct. Fields map to the event's
// fields by their `avro:"name"` tag or by their name in snake_case, as
// serde encodes them; a field the event lacks keeps its zero value. Events
// of types data does not name are not read.
func EventTopicOf(topic string, data ...any) EventTopic {
	et := EventTopic{Topic: topic, types: map[string]eventType{}}
	if !eventTopic.MatchString(topic) {
		et.errs = append(et.errs, fmt.Errorf("event topic %q must be dot-separated names, e.g. events.Order", topic))
	}
	if len(data) == 0 {
		et.errs = append(et.errs, errors.New("no event types: pass one value of each event data struct"))
	}
	for _, d := range data {
		t := reflect.TypeOf(d)
		switch {
		case t == nil || t.Kind() != reflect.Struct:
			et.errs = append(et.errs, fmt.Errorf("event data %T is not a struct", d))
		case t.Name() == "":
			et.errs = append(et.errs, fmt.Errorf("event data %s has no type name to match event types with", t))
		case et.types[t.Name()].typ != nil:
			et.errs = append(et.errs, fmt.Errorf("two event data types are named %s", t.Name()))
		default:
			et.types[t.Name()] = eventType{typ: t, fields: structFields(t, "avro")}
		}
	}
	return et
}

// decode returns the data of an event of type typ, fields being the event's
// fields by name as Avro decodes them; ok is false for a type et does not
// declare.
func (et EventTopic) decode(typ string, fields map[string]any) (data any, ok bool, err error) {
	t, ok := et.types[typ]
	if !ok {
		return nil, false, nil
	}
	v := reflect.New(t.typ).Elem()
	for _, f := range t.fields {
		x := fields[f.column]
		if x == nil {
			continue
		}
		if err := assign(v.Field(f.index), x); err != nil {
			return nil, true, fmt.Errorf("event %s field %s into %s.%s: %w", typ, f.column, t.typ.Name(), t.typ.Field(f.index).Name, err)
		}
	}
	return v.Interface(), true, nil
}

// ProjectionNode folds the events of an event topic into a state per key,
// kept in a table of its own. Build it with [Projection].
type ProjectionNode struct {
	name      string
	events    EventTopic
	stateType string
	key       func(RecordedEvent) string
	fold      func(json.RawMessage, RecordedEvent) (json.RawMessage, error)
	state     func(json.RawMessage) (any, error)
	errs      []error
}

// Projection declares the event-sourcing projection name: it reads only the
// events of events and folds them, key by key, into a state of type S.
//
// key tells the projection key an event belongs to (a customer id taken from
// the data of an order's events, say); every event of one aggregate must
// have the same key, since an aggregate's events are ordered only among
// themselves. fold returns the state after an event; the first event of a
// key is folded into S's zero value. Both must be pure functions of their
// arguments.
//
// Each aggregate's events reach fold in position order, exactly once: the
// table keeps, next to the state, the position of the last event applied for
// every aggregate folded into the key (and the types of the events applied
// at that position), and an event at or before it (a redelivery or a replay)
// changes nothing. These entries stay after an aggregate's last event (a
// delete), so the state of a key grows with the number of its aggregates.
// Events of different aggregates, though, interleave in any order, and a
// rebuild may interleave them differently: for a rebuilt table to equal the
// live one byte for byte, the state fold returns must not depend on that
// interleaving. Keep per-aggregate facts (the orders example keeps each
// order's status and amount) and what is computed from them.
//
// States are stored as JSON (encoding/json, which sorts map keys), so S must
// marshal and unmarshal to the same value, and equal states are equal bytes.
// The processor runs each projection as a consumer group of its own, so it
// can be rebuilt from the start of the event topic under a new group.
func Projection[S any](name string, events EventTopic, key func(RecordedEvent) string, fold func(S, RecordedEvent) S) *ProjectionNode {
	n := &ProjectionNode{name: name, events: events, stateType: fmt.Sprintf("%T", *new(S))}
	if !topologyName.MatchString(name) {
		n.errs = append(n.errs, fmt.Errorf("projection name %q: use lower-case letters, digits and '-', starting with a letter (it names the projection's consumer group)", name))
	}
	n.errs = append(n.errs, events.errs...)
	if key == nil {
		n.errs = append(n.errs, errors.New("key function is nil"))
	}
	if fold == nil {
		n.errs = append(n.errs, errors.New("fold function is nil"))
	}
	if _, err := json.Marshal(*new(S)); err != nil {
		n.errs = append(n.errs, fmt.Errorf("state type %s cannot be stored as JSON: %w", n.stateType, err))
	}
	decode := func(raw json.RawMessage) (S, error) {
		var s S
		if len(raw) == 0 {
			return s, nil
		}
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	n.key = key
	n.fold = func(raw json.RawMessage, ev RecordedEvent) (json.RawMessage, error) {
		s, err := decode(raw)
		if err != nil {
			return nil, fmt.Errorf("decode state as %s: %w", n.stateType, err)
		}
		return json.Marshal(fold(s, ev))
	}
	n.state = func(raw json.RawMessage) (any, error) { return decode(raw) }
	return n
}

// Name returns the projection's name.
func (n *ProjectionNode) Name() string { return n.name }

// Input returns the event topic the projection reads.
func (n *ProjectionNode) Input() string { return n.events.Topic }

// Group returns the consumer group the projection runs as when its topology
// runs under group: "<group>-<name>". The projection's table and loop topics
// are named after it.
func (n *ProjectionNode) Group(group string) string { return group + "-" + n.name }

func (n *ProjectionNode) describe() string {
	types := slices.Sorted(maps.Keys(n.events.types))
	return fmt.Sprintf("projection %s of %s (%s) into %s per key", n.name, n.events.Topic, strings.Join(types, ", "), n.stateType)
}

func (n *ProjectionNode) validate() error {
	if len(n.errs) > 0 {
		return fmt.Errorf("projection %s of %s: %w", n.name, n.events.Topic, errors.Join(n.errs...))
	}
	return nil
}

// ReadEvent returns ev with its Data decoded from fields, the event's fields
// by name as Avro decodes them (serde.Decoder.DecodeEventRecord). ok is false
// for an event of a type the projection's [EventTopic] does not declare: the
// projection skips it.
func (n *ProjectionNode) ReadEvent(ev RecordedEvent, fields map[string]any) (RecordedEvent, bool, error) {
	if err := n.validate(); err != nil {
		return ev, false, err
	}
	data, ok, err := n.events.decode(ev.Type, fields)
	ev.Data = data
	return ev, ok, err
}

// Key returns the projection key of ev, an event ReadEvent returned.
func (n *ProjectionNode) Key(ev RecordedEvent) (string, error) {
	k := n.key(ev)
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
}

// Apply folds ev into stored, the table value of ev's key (nil for a key that
// has none yet), and returns the new value. When the value holds ev already
// (its aggregate's last applied event is at a later position, or at the same
// position and of the same type) it returns applied false and next nil: the
// table stays as it is. Apply is a pure function.
func (n *ProjectionNode) Apply(stored []byte, ev RecordedEvent) (next []byte, applied bool, err error) {
	if err := n.validate(); err != nil {
		return nil, false, err
	}
	var v projectionValue
	if len(stored) > 0 {
		if err := json.Unmarshal(stored, &v); err != nil {
			return nil, false, fmt.Errorf("projection %s: decode table value: %w", n.name, err)
		}
	}
	last, seen := v.Applied[ev.AggregateID]
	at := ev.Position.Compare(last.Position)
	if seen && (at < 0 || at == 0 && slices.Contains(last.Types, ev.Type)) {
		return nil, false, nil
	}
	if v.State, err = n.fold(v.State, ev); err != nil {
		return nil, false, fmt.Errorf("projection %s: %w", n.name, err)
	}
	if seen && at == 0 {
		last.Types = slices.Clone(last.Types)
		last.Types = append(last.Types, ev.Type)
		slices.Sort(last.Types)
	} else {
		last = appliedEvents{Position: ev.Position, Types: []string{ev.Type}}
	}
	if v.Applied == nil {
		v.Applied = map[string]appliedEvents{}
	}
	v.Applied[ev.AggregateID] = last
	next, err = json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("projection %s: encode table value: %w", n.name, err)
	}
	return next, true, nil
}

// State returns the state (an S) a table value of the projection holds.
func (n *ProjectionNode) State(value []byte) (any, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	var v projectionValue
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, fmt.Errorf("projection %s: decode table value: %w", n.name, err)
	}
	s, err := n.state(v.State)
	if err != nil {
		return nil, fmt.Errorf("projection %s: decode state as %s: %w", n.name, n.stateType, err)
	}
	return s, nil
}
