package serde

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sync"
	"time"
	"unicode"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// DomainEvent is a domain event as it travels on an event topic: its own
// fields first (event_id, event_type, aggregate_id, position, occurred_at),
// then the fields of Data, a flat struct. The Avro record is named after the
// event type in the topic's namespace (events.Order.OrderCreated) and
// registered under the subject <topic>-<record name>
// (TopicRecordNameStrategy), so that one topic carries every event type of
// an aggregate.
type DomainEvent struct {
	ID          string
	Type        string
	AggregateID string
	Position    change.Position
	OccurredAt  time.Time
	Data        any
}

// Data field types an event schema supports, and their Avro form: string;
// int, int32, int64 (long); float64 (double); bool; time.Time (long,
// timestamp-micros); *big.Rat (string, exact decimal); pointers to these are
// nullable.
type eventSchema struct {
	name   string // full record name
	schema string
	codec  *goavro.Codec
	fields []eventField
	id     int
}

type eventField struct {
	index    int
	name     string
	kind     reflect.Kind
	isTime   bool
	isRat    bool
	nullable bool
}

var ratPtr = reflect.TypeOf((*big.Rat)(nil))

// EventEncoder encodes domain events for one event topic. It is safe for
// concurrent use.
type EventEncoder struct {
	enc   *Encoder
	topic string

	mu      sync.Mutex
	schemas map[string]*eventSchema // by event type
}

// EventEncoder returns an encoder of domain events for topic (a valid
// Avro namespace, e.g. "events.Order"), registering schemas with e's registry.
func (e *Encoder) EventEncoder(topic string) *EventEncoder {
	return &EventEncoder{enc: e, topic: topic, schemas: map[string]*eventSchema{}}
}

func snakeCase(s string) string {
	var out []rune
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				out = append(out, '_')
			}
			r = unicode.ToLower(r)
		}
		out = append(out, r)
	}
	return string(out)
}

func (ee *EventEncoder) schemaFor(ctx context.Context, ev *DomainEvent) (*eventSchema, error) {
	ee.mu.Lock()
	defer ee.mu.Unlock()
	if s, ok := ee.schemas[ev.Type]; ok {
		return s, nil
	}
	s, err := newEventSchema(ee.topic, ev)
	if err != nil {
		return nil, err
	}
	if s.id, err = ee.enc.create(ctx, ee.topic+"-"+s.name, s.schema); err != nil {
		return nil, err
	}
	ee.schemas[ev.Type] = s
	return s, nil
}

// newEventSchema builds the schema of ev's type on topic, from its Data.
func newEventSchema(topic string, ev *DomainEvent) (*eventSchema, error) {
	t := reflect.TypeOf(ev.Data)
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("event %s: data is %T, want a struct", ev.Type, ev.Data)
	}
	fields := []any{
		map[string]any{"name": "event_id", "type": "string"},
		map[string]any{"name": "event_type", "type": "string"},
		map[string]any{"name": "aggregate_id", "type": "string"},
		map[string]any{"name": "position", "type": "string"},
		map[string]any{"name": "occurred_at", "type": map[string]any{"type": "long", "logicalType": "timestamp-micros"}},
	}
	s := &eventSchema{name: avroName(topic) + "." + avroName(ev.Type)}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("avro")
		if name == "-" {
			continue
		}
		if name == "" {
			name = snakeCase(f.Name)
		}
		ft, nullable := f.Type, false
		if ft.Kind() == reflect.Pointer && ft != ratPtr {
			ft, nullable = ft.Elem(), true
		}
		ef := eventField{index: i, name: name, kind: ft.Kind(), nullable: nullable || ft == ratPtr}
		var avroType any
		switch {
		case ft == reflect.TypeOf(time.Time{}):
			ef.isTime, avroType = true, map[string]any{"type": "long", "logicalType": "timestamp-micros"}
		case ft == ratPtr:
			ef.isRat, avroType = true, "string"
		case ft.Kind() == reflect.String:
			avroType = "string"
		case ft.Kind() == reflect.Int32:
			avroType = "int"
		case ft.Kind() == reflect.Int, ft.Kind() == reflect.Int64:
			avroType = "long"
		case ft.Kind() == reflect.Float64:
			avroType = "double"
		case ft.Kind() == reflect.Bool:
			avroType = "boolean"
		default:
			return nil, fmt.Errorf("event %s field %s: type %s has no Avro form here; use string, int32, int64, float64, bool, time.Time or *big.Rat", ev.Type, f.Name, f.Type)
		}
		field := map[string]any{"name": name, "type": avroType}
		if ef.nullable {
			field["type"], field["default"] = []any{"null", avroType}, nil
		}
		fields = append(fields, field)
		s.fields = append(s.fields, ef)
	}
	b, err := json.Marshal(map[string]any{"type": "record", "name": avroName(ev.Type), "namespace": avroName(topic), "fields": fields})
	if err != nil {
		return nil, err
	}
	s.schema = string(b)
	if s.codec, err = goavro.NewCodec(s.schema); err != nil {
		return nil, fmt.Errorf("event %s schema: %w", ev.Type, err)
	}
	return s, nil
}

// Encode returns ev's wire-format value.
func (ee *EventEncoder) Encode(ctx context.Context, ev *DomainEvent) ([]byte, error) {
	s, err := ee.schemaFor(ctx, ev)
	if err != nil {
		return nil, err
	}
	body, err := s.binary(ev)
	if err != nil {
		return nil, err
	}
	return AppendWire(nil, s.id, body), nil
}

// CheckEvent reports whether an [EventEncoder] of topic can encode ev:
// whether its Data is a flat struct of the supported field types and its
// values encode. It needs no registry, so that tests can catch an event a
// processor would fail on before anything runs (package topotest does).
func CheckEvent(topic string, ev *DomainEvent) error {
	s, err := newEventSchema(topic, ev)
	if err != nil {
		return err
	}
	_, err = s.binary(ev)
	return err
}

// ReadBack returns what [Decoder.DecodeEventRecord] decodes ev to once an
// [EventEncoder] of topic has encoded it: its common fields and the fields
// of its Data by name, as Avro's native values. It needs no registry, so
// that tests can read events back as a projection reads them (package
// topotest does).
func ReadBack(topic string, ev *DomainEvent) (DomainEvent, map[string]any, error) {
	s, err := newEventSchema(topic, ev)
	if err != nil {
		return DomainEvent{}, nil, err
	}
	body, err := s.binary(ev)
	if err != nil {
		return DomainEvent{}, nil, err
	}
	native, _, err := s.codec.NativeFromBinary(body)
	if err != nil {
		return DomainEvent{}, nil, fmt.Errorf("decode event %s: %w", ev.Type, err)
	}
	return eventFromNative(native)
}

// binary returns ev's Avro binary body under s.
func (s *eventSchema) binary(ev *DomainEvent) ([]byte, error) {
	native := map[string]any{
		"event_id": ev.ID, "event_type": ev.Type, "aggregate_id": ev.AggregateID,
		"position": ev.Position.String(), "occurred_at": ev.OccurredAt.UTC(),
	}
	v := reflect.ValueOf(ev.Data)
	for _, f := range s.fields {
		fv := v.Field(f.index)
		if f.nullable && fv.IsNil() {
			native[f.name] = nil
			continue
		}
		if fv.Kind() == reflect.Pointer && !f.isRat {
			fv = fv.Elem()
		}
		var x any
		switch {
		case f.isTime:
			x = fv.Interface().(time.Time).UTC()
		case f.isRat:
			x = fv.Interface().(*big.Rat).FloatString(ratDigits(fv.Interface().(*big.Rat)))
		case f.kind == reflect.Int32:
			x = int32(fv.Int())
		case f.kind == reflect.Int || f.kind == reflect.Int64:
			x = fv.Int()
		default:
			x = fv.Interface()
		}
		if f.nullable {
			branch := map[reflect.Kind]string{reflect.String: "string", reflect.Int32: "int", reflect.Int: "long", reflect.Int64: "long", reflect.Float64: "double", reflect.Bool: "boolean"}[f.kind]
			if f.isTime {
				branch = "long.timestamp-micros"
			}
			if f.isRat {
				branch = "string"
			}
			x = goavro.Union(branch, x)
		}
		native[f.name] = x
	}
	body, err := s.codec.BinaryFromNative(nil, native)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.Type, err)
	}
	return body, nil
}

// ratDigits is the number of decimal digits r needs (at most 30).
func ratDigits(r *big.Rat) int {
	_, scale := unscale(r)
	return min(scale, 30)
}

// DecodeEventRecord decodes an event record into its common fields and the
// other fields by name, as Avro's native values.
func (d *Decoder) DecodeEventRecord(ctx context.Context, value []byte) (DomainEvent, map[string]any, error) {
	r, id, body, err := d.readerOf(ctx, value)
	if err != nil {
		return DomainEvent{}, nil, err
	}
	native, _, err := r.codec.NativeFromBinary(body)
	if err != nil {
		return DomainEvent{}, nil, fmt.Errorf("decode event with schema id %d: %w", id, err)
	}
	return eventFromNative(native)
}

// eventFromNative splits a decoded event record into its common fields and
// the others.
func eventFromNative(native any) (DomainEvent, map[string]any, error) {
	var err error
	m, _ := native.(map[string]any)
	ev := DomainEvent{}
	ev.ID, _ = m["event_id"].(string)
	ev.Type, _ = m["event_type"].(string)
	ev.AggregateID, _ = m["aggregate_id"].(string)
	if p, ok := m["position"].(string); ok {
		if ev.Position, err = change.ParsePosition(p); err != nil {
			return DomainEvent{}, nil, err
		}
	}
	ev.OccurredAt, _ = m["occurred_at"].(time.Time)
	data := map[string]any{}
	for k, v := range m {
		switch k {
		case "event_id", "event_type", "aggregate_id", "position", "occurred_at":
		default:
			data[k] = unwrapUnion(v)
		}
	}
	return ev, data, nil
}
