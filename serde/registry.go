package serde

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/cdcflow/cdcflow/change"
	"github.com/twmb/franz-go/pkg/sr"
)

// Encoder encodes change events for one topic prefix in the Confluent wire
// format, registering each table's key and envelope schemas with a schema
// registry under the subjects <topic>-key and <topic>-value
// (TopicNameStrategy). It is safe for concurrent use.
type Encoder struct {
	reg    *sr.Client
	prefix string
	cfg    encoderConfig
	cfgErr error // a bad option: every Encode fails with it

	mu       sync.Mutex
	tables   map[string]*registered // by table identity (name + columns)
	fixedIDs map[string][2]int      // topic → key and value schema ids of fixed schemas
	// seen maps the tables encoded lately to their entry in tables, by
	// pointer: the identity is not worked out again for every row.
	seen map[*change.Table]*registered
}

// maxSeen bounds Encoder.seen: capture makes a new change.Table for every
// relation message, so the map would otherwise grow with every one.
const maxSeen = 1024

type registered struct {
	schemas        *TableSchemas
	keyID, valueID int
}

// NewEncoder returns an Encoder for topics named <prefix>.<schema>.<table>
// that maps columns to Avro as Debezium's PostgreSQL connector does with its
// default settings, unless opts say otherwise.
func NewEncoder(reg *sr.Client, prefix string, opts ...EncoderOpt) *Encoder {
	cfg, err := newEncoderConfig(opts)
	return &Encoder{reg: reg, prefix: prefix, cfg: cfg, cfgErr: err,
		tables: map[string]*registered{}, fixedIDs: map[string][2]int{}, seen: map[*change.Table]*registered{}}
}

// Encoded is one change event ready for Kafka.
type Encoded struct {
	Topic   string
	Key     []byte
	Value   []byte // nil for a tombstone
	Headers []Header
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Encode encodes ev, a change to table t, registering t's schemas first if
// this version of t was not registered yet. A truncate (op t) has no key, as
// in Debezium: its Encoded.Key is nil.
func (e *Encoder) Encode(ctx context.Context, t *change.Table, ev *change.Event) (Encoded, error) {
	r, err := e.register(ctx, t)
	if err != nil {
		return Encoded{}, err
	}
	if ev.Op == change.OpTruncate {
		value, err := r.schemas.EncodeEnvelope(ev)
		if err != nil {
			return Encoded{}, err
		}
		return Encoded{Topic: r.schemas.Topic, Value: AppendWire(nil, r.valueID, value)}, nil
	}
	keyRow := ev.After
	if ev.Op == change.OpDelete {
		keyRow = ev.Before
	}
	key, err := r.schemas.EncodeKey(keyRow)
	if err != nil {
		return Encoded{}, err
	}
	value, err := r.schemas.EncodeEnvelope(ev)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{
		Topic: r.schemas.Topic,
		Key:   AppendWire(nil, r.keyID, key),
		Value: AppendWire(nil, r.valueID, value),
	}, nil
}

// Tombstone returns the tombstone that follows the delete ev: the same key
// and a nil value, so that log compaction can drop the row's history.
func (e *Encoder) Tombstone(ctx context.Context, t *change.Table, ev *change.Event) (Encoded, error) {
	r, err := e.register(ctx, t)
	if err != nil {
		return Encoded{}, err
	}
	key, err := r.schemas.EncodeKey(ev.Before)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{Topic: r.schemas.Topic, Key: AppendWire(nil, r.keyID, key)}, nil
}

// register returns t's schemas and their ids, registering them first if
// this version of t was not registered yet. A table must not change once
// encoded with: a table of other columns is another *change.Table.
func (e *Encoder) register(ctx context.Context, t *change.Table) (*registered, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.seen[t]; ok {
		return r, nil
	}
	id := tableIdentity(t)
	if r, ok := e.tables[id]; ok {
		e.remember(t, r)
		return r, nil
	}
	if e.cfgErr != nil {
		return nil, e.cfgErr
	}
	schemas, err := newTableSchemas(e.prefix, t, e.cfg)
	if err != nil {
		return nil, err
	}
	keyID, err := e.create(ctx, schemas.Topic+"-key", schemas.Key)
	if err != nil {
		return nil, err
	}
	valueID, err := e.create(ctx, schemas.Topic+"-value", schemas.Envelope)
	if err != nil {
		return nil, err
	}
	r := &registered{schemas: schemas, keyID: keyID, valueID: valueID}
	e.tables[id] = r
	e.remember(t, r)
	return r, nil
}

// remember adds t to e.seen, forgetting the others when it is full.
func (e *Encoder) remember(t *change.Table, r *registered) {
	if len(e.seen) >= maxSeen {
		clear(e.seen)
	}
	e.seen[t] = r
}

// ErrRegistryUnavailable marks the errors of a registry that could not be
// asked: unreachable, timing out, refusing the credentials or answering with
// a server error. It is a passing condition of the service, not a fact about
// the record being encoded or decoded: retry later rather than treat the
// record as bad. Every other error of [Decoder] means the record itself
// cannot be read (not in wire format, a schema id the registry does not
// know, truncated or invalid Avro).
var ErrRegistryUnavailable = errors.New("schema registry unavailable; check that it runs and that the registry URL and credentials are right")

// ErrUnknownSchema marks a record whose schema id the registry does not
// know: it was not written with this registry's schemas.
var ErrUnknownSchema = errors.New("schema id not in the registry")

// ErrSchemaRejected marks the errors of a schema the registry refused (it
// is incompatible with the subject's earlier versions, or invalid): a fact
// about the data, unlike an unreachable registry.
var ErrSchemaRejected = errors.New("schema rejected by the registry")

// ValueError is a value that has no form in its column's Avro type.
type ValueError struct {
	Column string
	Err    error
}

func (e *ValueError) Error() string { return fmt.Sprintf("column %q: %v", e.Column, e.Err) }
func (e *ValueError) Unwrap() error { return e.Err }

func (e *Encoder) create(ctx context.Context, subject, schema string) (int, error) {
	ss, err := e.reg.CreateSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == 409 || re.StatusCode == 422) {
		return 0, fmt.Errorf("%w: subject %s: %s; make the change compatible (add columns as nullable, do not retype them) or change the subject's compatibility level", ErrSchemaRejected, subject, re.Message)
	}
	if err != nil {
		return 0, fmt.Errorf("register schema for subject %s: %w: %w", subject, err, ErrRegistryUnavailable)
	}
	return ss.ID, nil
}

func tableIdentity(t *change.Table) string {
	var b strings.Builder
	b.WriteString(t.String())
	for _, c := range t.Columns {
		fmt.Fprintf(&b, "|%s:%t:%t:%v:", c.Name, c.Key, c.Nullable, c.Default)
		writeTypeIdentity(&b, c)
	}
	return b.String()
}

// writeTypeIdentity writes what of c's type its Avro schema depends on.
func writeTypeIdentity(b *strings.Builder, c change.Column) {
	fmt.Fprintf(b, "%s:%d", c.Type, c.TypeMod)
	if c.EnumValues != nil {
		fmt.Fprintf(b, ":enum%q", c.EnumValues)
	}
	if c.Elem != nil {
		b.WriteString(":elem(")
		writeTypeIdentity(b, *c.Elem)
		b.WriteString(")")
	}
}

// Decoder decodes wire-format keys and envelopes written by any cdcflow (or
// Debezium-compatible) capture, fetching each schema id from the registry the
// first time it is seen. It is safe for concurrent use.
type Decoder struct {
	reg *sr.Client

	mu      sync.Mutex
	readers map[int]*reader
}

// Decoder returns a Decoder on the encoder's schema registry.
func (e *Encoder) Decoder() *Decoder { return NewDecoder(e.reg) }

// NewDecoder returns a Decoder that looks schemas up in reg.
func NewDecoder(reg *sr.Client) *Decoder {
	return &Decoder{reg: reg, readers: map[int]*reader{}}
}

func (d *Decoder) reader(ctx context.Context, id int) (*reader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.readers[id]; ok {
		return r, nil
	}
	s, err := d.reg.SchemaByID(ctx, id)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: id %d (%s)", ErrUnknownSchema, id, re.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch schema id %d: %w: %w", id, err, ErrRegistryUnavailable)
	}
	r, err := newReader(s.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	d.readers[id] = r
	return r, nil
}

// readerOf returns the reader for a wire-format message and its Avro body.
func (d *Decoder) readerOf(ctx context.Context, msg []byte) (*reader, int, []byte, error) {
	id, body, err := SplitWire(msg)
	if err != nil {
		return nil, 0, nil, err
	}
	r, err := d.reader(ctx, id)
	return r, id, body, err
}

// DecodeEvent decodes a change envelope. A nil value (a tombstone) decodes
// to a nil event and no error.
func (d *Decoder) DecodeEvent(ctx context.Context, value []byte) (*change.Event, error) {
	if value == nil {
		return nil, nil
	}
	r, id, body, err := d.readerOf(ctx, value)
	if err != nil {
		return nil, err
	}
	ev, err := r.decodeEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("decode envelope with schema id %d: %w", id, err)
	}
	return ev, nil
}

// DecodeKey decodes a change key.
func (d *Decoder) DecodeKey(ctx context.Context, key []byte) (change.Row, error) {
	r, id, body, err := d.readerOf(ctx, key)
	if err != nil {
		return nil, err
	}
	row, err := r.decodeKey(body)
	if err != nil {
		return nil, fmt.Errorf("decode key with schema id %d: %w", id, err)
	}
	return row, nil
}
