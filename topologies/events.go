package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// Event is a domain event a topology derives from a change: the id of the
// aggregate it belongs to and its data, a flat struct whose Go type names
// the event (an OrderPaid value is an OrderPaid event; see serde.DomainEvent
// for the field types). The event topic it goes to must declare the type
// ([EventTopicOf]).
type Event struct {
	AggregateID string
	Data        any
}

// Type is the event's type: the name of its data's Go type ("" for nil
// data).
func (e Event) Type() string { return eventTypeName(reflect.TypeOf(e.Data)) }

func eventTypeName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

// EventID is the deterministic id of the event of type typ that the change
// at pos derived for aggregate: the same change always yields the same id,
// so consumers can deduplicate, and a replay yields the same events.
func EventID(pos change.Position, aggregate, typ string) string {
	return engine.EventID(pos, aggregate, typ)
}

// EventTopic is a domain-event topic and the event types it carries: what
// an [Events] node writes and a [Projection] reads. Build it with
// [EventTopicOf].
type EventTopic struct {
	Topic Topic
	types map[string]eventType
	errs  []error
}

type eventType struct {
	typ    reflect.Type
	fields []rowField
}

var eventTopicName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// EventTopicOf declares the event topic topic (dot-separated names: it is
// the events' Avro namespace, e.g. events.Order) and its event types: data
// holds one value of each event's data struct, whose type name is the
// event's type. An event read back decodes into the struct of its type;
// fields map to the event's fields by their `avro:"name"` tag or by their
// name in snake_case, as serde encodes them, and a field the event lacks
// keeps its zero value.
func EventTopicOf(topic string, data ...any) EventTopic {
	et := EventTopic{Topic: Topic(topic), types: map[string]eventType{}}
	if !eventTopicName.MatchString(topic) {
		et.errs = append(et.errs, fmt.Errorf("event topic %q must be dot-separated names (it is the events' Avro namespace), e.g. events.Order", topic))
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
			et.errs = append(et.errs, fmt.Errorf("event data %s has no type name to be the event's type", t))
		case et.types[t.Name()].typ != nil:
			et.errs = append(et.errs, fmt.Errorf("two event data types are named %s", t.Name()))
		default:
			et.types[t.Name()] = eventType{typ: t, fields: structFields(t, "avro")}
		}
	}
	return et
}

// Types lists the topic's event types, in name order.
func (et EventTopic) Types() []string { return slices.Sorted(maps.Keys(et.types)) }

// decode reads the fields of an event of type t, by name as Avro decodes
// them, into a value of t.
func (t eventType) decode(fields map[string]any) (any, error) {
	v := reflect.New(t.typ).Elem()
	for _, f := range t.fields {
		x := fields[f.column]
		if x == nil {
			continue
		}
		if err := assign(v.Field(f.index), x); err != nil {
			return nil, fmt.Errorf("event %s field %s into %s.%s: %w", t.typ.Name(), f.column, t.typ.Name(), t.typ.Field(f.index).Name, err)
		}
	}
	return v.Interface(), nil
}

// EventsNode derives domain events from the changes of a table and emits
// them to an event topic. Build it with [Events].
type EventsNode struct{ e *engine.Events }

// Events declares domain events derived from table's changes, emitted to the
// event topic events, keyed by aggregate id. derive sees each change with
// the row's previous version as Before even when the source sent none
// (REPLICA IDENTITY DEFAULT): the processor keeps the last version of every
// row, so status transitions can be read from Before and After. A change is
// turned into events once: redelivered or replayed changes (at or before the
// last position seen for the row) derive nothing. An event of a type events
// does not declare is an error (the change goes to the dead-letter topic).
// derive must be a pure function of the change.
func Events[T any](table Table[T], events EventTopic, derive func(Change[T]) []Event) *EventsNode {
	n := &engine.Events{Input: string(table.Topic), Debezium: table.Debezium, Output: string(events.Topic), RowType: typeName[T](), Types: map[string]bool{}}
	for t := range events.types {
		n.Types[t] = true
	}
	dec, err := newRowDecoder[T]()
	switch {
	case events.types == nil:
		n.Err = errors.New("the event topic is the zero EventTopic; declare it with topologies.EventTopicOf")
	case len(events.errs) > 0:
		n.Err = errors.Join(events.errs...)
	case err != nil:
		n.Err = err
	case derive == nil:
		n.Err = errors.New("derive function is nil")
	}
	if n.Err != nil {
		return &EventsNode{n}
	}
	n.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.Derive = func(op change.Op, before, after any, pos change.Position, src change.Source) []engine.Event {
		c := Change[T]{Op: op, Position: pos, Source: src}
		if before != nil {
			b := before.(T)
			c.Before = &b
		}
		if after != nil {
			a := after.(T)
			c.After = &a
		}
		derived := derive(c)
		out := make([]engine.Event, len(derived))
		for i, e := range derived {
			data := e.Data
			if v := reflect.ValueOf(data); v.Kind() == reflect.Pointer && !v.IsNil() {
				data = v.Elem().Interface() // events are values: &OrderPaid{} is an OrderPaid
			}
			out[i] = engine.Event{Type: e.Type(), AggregateID: e.AggregateID, Data: data}
		}
		return out
	}
	n.EncodeRow = func(v any) ([]byte, error) { return json.Marshal(v) }
	n.DecodeRow = func(b []byte) (any, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}
	return &EventsNode{n}
}

// Engine implements [Node].
func (n *EventsNode) Engine() engine.Node { return n.e }
