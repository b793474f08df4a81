package serde

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// Names of the records shared by every envelope schema.
const (
	sourceRecordName      = "io.debezium.connector.postgresql.Source"
	transactionRecordName = "event.block"
	envelopeVersion       = 2
)

// Topic returns the Debezium topic name of a table: <prefix>.<schema>.<table>.
func Topic(prefix, schema, table string) string {
	return prefix + "." + schema + "." + table
}

// avroName makes s a valid Avro name part the way Debezium does: every
// character outside [A-Za-z0-9_] becomes '_' and a leading digit gets a '_'
// in front.
func avroName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// namespace returns the Avro namespace of a table's records.
func namespace(prefix, schema, table string) string {
	return avroName(prefix) + "." + avroName(schema) + "." + avroName(table)
}

// rowSchema is a record of columns: a table's Key or Value record.
type rowSchema struct {
	fullName string
	fields   []rowField
}

type rowField struct {
	name     string
	avro     string // avroName(name), worked out once; empty when read from a schema
	pgType   string // PostgreSQL's type name, for errors; empty when read from a schema
	t        columnType
	nullable bool
	def      any // goavro's native form of the column's default; nil for none
}

func newRowSchema(fullName string, cols []change.Column, defined map[string]bool, cfg encoderConfig) (*rowSchema, []any) {
	rs := &rowSchema{fullName: fullName}
	fields := make([]any, 0, len(cols))
	for _, c := range cols {
		t := columnTypeOf(c, cfg)
		s := t.schema(defined)
		c.Nullable = c.Nullable || t.alwaysOptional()
		f := map[string]any{"name": avroName(c.Name)}
		def, native, hasDefault := t.defaultOf(c.Default)
		switch {
		case hasDefault && c.Nullable:
			// Confluent's AvroData puts a union's non-null member first
			// when the default is not null, as Avro requires.
			f["type"], f["default"] = []any{withConnectDefault(s, def), "null"}, def
		case hasDefault:
			f["type"], f["default"] = withConnectDefault(s, def), def
		case c.Nullable:
			f["type"], f["default"] = []any{"null", s}, nil
		default:
			f["type"] = s
		}
		fields = append(fields, f)
		rs.fields = append(rs.fields, rowField{name: c.Name, avro: avroName(c.Name), pgType: c.Type, t: t, nullable: c.Nullable, def: native})
	}
	return rs, fields
}

// encode converts a Row to goavro's native record form.
func (rs *rowSchema) encode(row change.Row) (map[string]any, error) {
	out := make(map[string]any, len(rs.fields))
	for _, f := range rs.fields {
		name := f.avro
		if name == "" {
			name = avroName(f.name)
		}
		v, present := row[f.name]
		if v == nil {
			if !f.nullable {
				if present {
					return nil, &ValueError{Column: f.name, Err: errors.New("null in a column that is not nullable")}
				}
				// Not sent (a key-only before image): Debezium writes the
				// column's default into a required field, or else the
				// type's fallback value.
				out[name] = f.def
				if f.def == nil {
					out[name] = f.t.fallback()
				}
				continue
			}
			out[name] = nil
			continue
		}
		var a any
		var err error
		if _, ok := v.(change.Unavailable); ok {
			a, err = f.t.unavailable()
		} else {
			a, err = f.t.toAvro(v)
		}
		if err == nil && a == nil && !f.nullable {
			err = fmt.Errorf("%w; the column is NOT NULL, so it cannot travel as null as Debezium sends it", errNoPreciseForm)
		}
		if err != nil {
			return nil, &ValueError{Column: f.name, Err: typed(f.pgType, err)}
		}
		if a != nil && f.nullable {
			a = goavro.Union(f.t.branch(), a)
		}
		out[name] = a
	}
	return out, nil
}

// typed prefixes err with the column's PostgreSQL type, when known.
func typed(pgType string, err error) error {
	if pgType == "" {
		return err
	}
	return fmt.Errorf("%s: %w", pgType, err)
}

// decode converts goavro's native record form back to a Row.
func (rs *rowSchema) decode(native any) (change.Row, error) {
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: got %T", rs.fullName, native)
	}
	row := make(change.Row, len(rs.fields))
	for _, f := range rs.fields {
		v := unwrapUnion(m[f.name])
		if v == nil {
			row[f.name] = nil
			continue
		}
		if f.t.isUnavailable(v) {
			row[f.name] = change.Unavailable{}
			continue
		}
		r, err := f.t.fromAvro(v)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.name, err)
		}
		row[f.name] = r
	}
	return row, nil
}

// unwrapUnion returns the value inside goavro's native union form
// (map[string]any with one entry), or v itself.
func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, x := range m {
			if strings.Contains(k, ".") || isPrimitive(k) {
				return x
			}
		}
	}
	return v
}

func isPrimitive(s string) bool {
	switch s {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string", "array", "map":
		return true
	}
	return false
}

// TableSchemas are the Avro schemas of one version of one table: its key
// record and its envelope, with codecs ready to encode.
type TableSchemas struct {
	Topic    string
	Key      string // the key schema, JSON
	Envelope string // the value (envelope) schema, JSON

	key, value *rowSchema
	keyCodec   *goavro.Codec
	envCodec   *goavro.Codec
	valueCodec *goavro.Codec // the Value record alone: EncodeEnvelope writes the rest
}

// NewTableSchemas derives the key and envelope schemas of t, named as
// Debezium names them for topic prefix prefix, with columns mapped as opts
// say (by default as Debezium maps them by default).
func NewTableSchemas(prefix string, t *change.Table, opts ...EncoderOpt) (*TableSchemas, error) {
	cfg, err := newEncoderConfig(opts)
	if err != nil {
		return nil, err
	}
	return newTableSchemas(prefix, t, cfg)
}

func newTableSchemas(prefix string, t *change.Table, cfg encoderConfig) (*TableSchemas, error) {
	keyCols := t.KeyColumns()
	if len(keyCols) == 0 {
		return nil, fmt.Errorf("table %s has no primary key or replica identity columns", t)
	}
	ns := namespace(prefix, t.Schema, t.Name)

	keyRS, keyFields := newRowSchema(ns+".Key", keyCols, map[string]bool{}, cfg)
	keySchema := map[string]any{
		"type": "record", "name": "Key", "namespace": ns,
		"fields": keyFields, "connect.name": ns + ".Key",
	}

	valueRS, valueFields := newRowSchema(ns+".Value", t.Columns, map[string]bool{}, cfg)
	valueRecord := map[string]any{
		"type": "record", "name": "Value", "namespace": ns,
		"fields": valueFields, "connect.name": ns + ".Value",
	}
	envelope := map[string]any{
		"type": "record", "name": "Envelope", "namespace": ns,
		"fields": []any{
			map[string]any{"name": "before", "type": []any{"null", valueRecord}, "default": nil},
			map[string]any{"name": "after", "type": []any{"null", "Value"}, "default": nil},
			map[string]any{"name": "source", "type": sourceSchema()},
			map[string]any{"name": "transaction", "type": []any{"null", transactionSchema()}, "default": nil},
			map[string]any{"name": "op", "type": "string"},
			optionalLong("ts_ms"), optionalLong("ts_us"), optionalLong("ts_ns"),
		},
		"connect.version": envelopeVersion,
		"connect.name":    ns + ".Envelope",
	}

	ts := &TableSchemas{Topic: Topic(prefix, t.Schema, t.Name), key: keyRS, value: valueRS}
	var err error
	if ts.Key, ts.keyCodec, err = compile(keySchema); err != nil {
		return nil, fmt.Errorf("key schema of %s: %w", t, err)
	}
	if ts.Envelope, ts.envCodec, err = compile(envelope); err != nil {
		return nil, fmt.Errorf("envelope schema of %s: %w", t, err)
	}
	if _, ts.valueCodec, err = compile(valueRecord); err != nil {
		return nil, fmt.Errorf("value schema of %s: %w", t, err)
	}
	return ts, nil
}

// compile returns schema's JSON, to register, and its codec.
func compile(schema any) (string, *goavro.Codec, error) {
	b, err := json.Marshal(schema)
	if err != nil {
		return "", nil, err
	}
	c, err := newCodec(string(b))
	if err != nil {
		return "", nil, err
	}
	return string(b), c, nil
}

// newCodec compiles a schema for goavro without its fields' defaults:
// reading and writing never use them, and goavro cannot compile every
// default Avro allows (a decimal default in a union, which Confluent's
// AvroData writes for a nullable numeric column with a DEFAULT).
func newCodec(schema string) (*goavro.Codec, error) {
	var v any
	if err := json.Unmarshal([]byte(schema), &v); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	b, err := json.Marshal(withoutDefaults(v))
	if err != nil {
		return nil, err
	}
	return goavro.NewCodec(string(b))
}

// withoutDefaults copies a parsed schema without the default of any record
// field.
func withoutDefaults(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutDefaults(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = withoutDefaults(e)
		}
		if fields, ok := out["fields"].([]any); ok && out["type"] == "record" {
			for _, f := range fields {
				if fm, ok := f.(map[string]any); ok {
					delete(fm, "default")
				}
			}
		}
		return out
	}
	return v
}

func optionalLong(name string) map[string]any {
	return map[string]any{"name": name, "type": []any{"null", "long"}, "default": nil}
}

func optionalString(name string) map[string]any {
	return map[string]any{"name": name, "type": []any{"null", "string"}, "default": nil}
}

// snapshotMarkers are the values of source.snapshot: Debezium's SnapshotRecord
// constants in declaration order, lowercased, as its SchemaFactory lists
// them in the enum's allowed parameter.
var snapshotMarkers = []string{change.SnapshotTrue, change.SnapshotFirst, change.SnapshotFirstInTable,
	change.SnapshotLastInTable, change.SnapshotLast, change.SnapshotFalse, change.SnapshotIncremental}

// sourceSchema is the source block as Debezium 3.6's PostgreSQL connector
// defines it (SchemaFactory.sourceInfoSchemaBuilder, version 1, then
// PostgresSourceInfoStructMaker's fields), written as Confluent's AvroConverter
// writes it: field by field, in order, optional fields as ["null", T] with
// default null, the snapshot enum (optional with default "false") as
// [enum, "null"].
func sourceSchema() map[string]any {
	str := func(name string) map[string]any { return map[string]any{"name": name, "type": "string"} }
	return map[string]any{
		"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
		"fields": []any{
			str("version"), str("connector"), str("name"),
			map[string]any{"name": "ts_ms", "type": "long"},
			map[string]any{"name": "snapshot", "type": []any{map[string]any{
				"type": "string", "connect.version": 1,
				"connect.parameters": map[string]string{"allowed": strings.Join(snapshotMarkers, ",")},
				"connect.default":    change.SnapshotFalse,
				"connect.name":       connectEnum,
			}, "null"}, "default": change.SnapshotFalse},
			str("db"), optionalString("sequence"), optionalLong("ts_us"), optionalLong("ts_ns"),
			str("schema"), str("table"),
			optionalLong("txId"), optionalLong("lsn"), optionalLong("xmin"),
			optionalString("origin"), optionalLong("origin_lsn"),
		},
		"connect.version": 1,
		"connect.name":    sourceRecordName,
	}
}

// transactionSchema is the envelope's transaction block: Debezium's event.block
// (SchemaFactory.transactionBlockSchema, version 1) and, last, cdcflow's
// commit_lsn, which Debezium 3.6 does not define: the LSN of the
// transaction's commit, named as Debezium's DBZ-2353 proposes it
// (PostgresTransactionStructMaker), which with total_order is the change's
// position.
func transactionSchema() map[string]any {
	return map[string]any{
		"type": "record", "name": "block", "namespace": "event",
		"fields": []any{
			map[string]any{"name": "id", "type": "string"},
			map[string]any{"name": "total_order", "type": "long"},
			map[string]any{"name": "data_collection_order", "type": "long"},
			optionalLong("commit_lsn"),
		},
		"connect.version": 1,
		"connect.name":    transactionRecordName,
	}
}

// EncodeKey returns the Avro body (without wire-format header) of row's key.
func (ts *TableSchemas) EncodeKey(row change.Row) ([]byte, error) {
	native, err := ts.key.encode(row)
	if err != nil {
		return nil, fmt.Errorf("encode key of %s: %w", ts.Topic, err)
	}
	return ts.keyCodec.BinaryFromNative(nil, native)
}

// EncodeEnvelope returns the Avro body (without wire-format header) of ev.
// It writes the envelope's fixed parts (the source and transaction blocks,
// op, the timestamps) in Avro's binary encoding itself, and the before and
// after rows with goavro: building goavro's native maps for the fixed parts
// cost more than encoding them.
func (ts *TableSchemas) EncodeEnvelope(ev *change.Event) ([]byte, error) {
	buf := make([]byte, 0, 256)
	for _, side := range []struct {
		name string
		row  change.Row
	}{{"before", ev.Before}, {"after", ev.After}} {
		if side.row == nil {
			buf = appendUnionIndex(buf, 0)
			continue
		}
		r, err := ts.value.encode(side.row)
		if err != nil {
			return nil, fmt.Errorf("encode %s of %s: %w", side.name, ts.Topic, err)
		}
		buf = appendUnionIndex(buf, 1)
		if buf, err = ts.valueCodec.BinaryFromNative(buf, r); err != nil {
			return nil, fmt.Errorf("encode %s of %s: %w", side.name, ts.Topic, err)
		}
	}
	buf = appendSource(buf, ev.Source)
	buf = appendTransaction(buf, ev.Transaction)
	buf = appendString(buf, ev.Op.String())
	for _, ts := range []int64{ev.TsMs, ev.TsMs * 1000, ev.TsMs * 1_000_000} {
		buf = appendLong(appendUnionIndex(buf, 1), ts)
	}
	return buf, nil
}

// appendSource appends the source block (see sourceSchema) in Avro's
// binary encoding.
func appendSource(b []byte, s change.Source) []byte {
	b = appendString(b, s.Version)
	b = appendString(b, s.Connector)
	b = appendString(b, s.Name)
	b = appendLong(b, s.TsMs)
	b = appendString(appendUnionIndex(b, 0), s.Snapshot) // [enum, "null"]
	b = appendString(b, s.DB)
	b = appendString(appendUnionIndex(b, 1), s.Sequence)
	b = appendLong(appendUnionIndex(b, 1), s.TsUs)
	b = appendLong(appendUnionIndex(b, 1), s.TsNs)
	b = appendString(b, s.Schema)
	b = appendString(b, s.Table)
	b = appendLong(appendUnionIndex(b, 1), s.TxID)
	b = appendLong(appendUnionIndex(b, 1), int64(s.LSN))
	b = appendUnionIndex(b, 0) // xmin
	if s.Origin == "" {
		b = appendUnionIndex(b, 0)
	} else {
		b = appendString(appendUnionIndex(b, 1), s.Origin)
	}
	return appendOptionalLong(b, int64(s.OriginLSN))
}

// appendTransaction appends the envelope's transaction field, a union of
// null and the transaction block (see transactionSchema), in Avro's binary
// encoding.
func appendTransaction(b []byte, tx *change.Transaction) []byte {
	if tx == nil {
		return appendUnionIndex(b, 0)
	}
	b = appendString(appendUnionIndex(b, 1), tx.ID)
	b = appendLong(b, tx.TotalOrder)
	b = appendLong(b, tx.DataCollectionOrder)
	return appendOptionalLong(b, int64(tx.CommitLSN))
}

// appendOptionalLong appends a ["null", "long"] union: null when v is 0.
func appendOptionalLong(b []byte, v int64) []byte {
	if v == 0 {
		return appendUnionIndex(b, 0)
	}
	return appendLong(appendUnionIndex(b, 1), v)
}

// appendLong appends v as Avro's long: a zig-zag varint, which is what
// encoding/binary's varint is.
func appendLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// appendUnionIndex appends the index of a union's branch.
func appendUnionIndex(b []byte, i int64) []byte { return appendLong(b, i) }

// appendString appends s as Avro's string: its length, then its bytes.
func appendString(b []byte, s string) []byte { return append(appendLong(b, int64(len(s))), s...) }

// sourceNative is the source block in goavro's native form, for the
// envelopes goavro encodes whole (logical decoding messages).
func sourceNative(s change.Source) map[string]any {
	return map[string]any{
		"version": s.Version, "connector": s.Connector, "name": s.Name, "ts_ms": s.TsMs,
		"snapshot": goavro.Union("string", s.Snapshot), "db": s.DB,
		"sequence": goavro.Union("string", s.Sequence),
		"ts_us":    goavro.Union("long", s.TsUs), "ts_ns": goavro.Union("long", s.TsNs),
		"schema": s.Schema, "table": s.Table,
		"txId": goavro.Union("long", s.TxID), "lsn": goavro.Union("long", int64(s.LSN)),
		"xmin":   nil,
		"origin": optionalNative("string", s.Origin, s.Origin == ""), "origin_lsn": optionalNative("long", int64(s.OriginLSN), s.OriginLSN == 0),
	}
}

func transactionNative(tx *change.Transaction) any {
	if tx == nil {
		return nil
	}
	return goavro.Union(transactionRecordName, map[string]any{
		"id": tx.ID, "total_order": tx.TotalOrder, "data_collection_order": tx.DataCollectionOrder,
		"commit_lsn": optionalNative("long", int64(tx.CommitLSN), tx.CommitLSN == 0),
	})
}

// optionalNative is v in a ["null", branch] union, or null when absent.
func optionalNative(branch string, v any, absent bool) any {
	if absent {
		return nil
	}
	return goavro.Union(branch, v)
}
