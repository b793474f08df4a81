package serde

import (
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
	pgType   string // PostgreSQL's type name, for errors; empty when read from a schema
	t        columnType
	nullable bool
}

func newRowSchema(fullName string, cols []change.Column, defined map[string]bool, cfg encoderConfig) (*rowSchema, []any) {
	rs := &rowSchema{fullName: fullName}
	fields := make([]any, 0, len(cols))
	for _, c := range cols {
		t := columnTypeOf(c, cfg.decimal)
		s := t.schema(defined)
		f := map[string]any{"name": avroName(c.Name)}
		if c.Nullable {
			f["type"] = []any{"null", s}
			f["default"] = nil
		} else {
			f["type"] = s
		}
		fields = append(fields, f)
		rs.fields = append(rs.fields, rowField{name: c.Name, pgType: c.Type, t: t, nullable: c.Nullable})
	}
	return rs, fields
}

// encode converts a Row to goavro's native record form.
func (rs *rowSchema) encode(row change.Row) (map[string]any, error) {
	out := make(map[string]any, len(rs.fields))
	for _, f := range rs.fields {
		v, present := row[f.name]
		if v == nil {
			if !f.nullable {
				if present {
					return nil, &ValueError{Column: f.name, Err: errors.New("null in a column that is not nullable")}
				}
				// Not sent (a key-only before image): Debezium writes the
				// type's fallback value into a required field.
				out[avroName(f.name)] = f.t.fallback()
				continue
			}
			out[avroName(f.name)] = nil
			continue
		}
		var a any
		var err error
		if _, ok := v.(change.Unavailable); ok {
			a, err = f.t.unavailable()
		} else {
			a, err = f.t.toAvro(v)
		}
		if err != nil {
			return nil, &ValueError{Column: f.name, Err: typed(f.pgType, err)}
		}
		if f.nullable {
			a = goavro.Union(f.t.branch(), a)
		}
		out[avroName(f.name)] = a
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
	return ts, nil
}

func compile(schema any) (string, *goavro.Codec, error) {
	b, err := json.Marshal(schema)
	if err != nil {
		return "", nil, err
	}
	c, err := goavro.NewCodec(string(b))
	if err != nil {
		return "", nil, err
	}
	return string(b), c, nil
}

func optionalLong(name string) map[string]any {
	return map[string]any{"name": name, "type": []any{"null", "long"}, "default": nil}
}

func optionalString(name string) map[string]any {
	return map[string]any{"name": name, "type": []any{"null", "string"}, "default": nil}
}

func sourceSchema() map[string]any {
	str := func(name string) map[string]any { return map[string]any{"name": name, "type": "string"} }
	return map[string]any{
		"type": "record", "name": "Source", "namespace": "io.debezium.connector.postgresql",
		"fields": []any{
			str("version"), str("connector"), str("name"),
			map[string]any{"name": "ts_ms", "type": "long"},
			map[string]any{"name": "snapshot", "type": []any{map[string]any{
				"type": "string", "connect.version": 1,
				"connect.parameters": map[string]string{"allowed": "true,last,false,incremental"},
				"connect.default":    "false",
				"connect.name":       "io.debezium.data.Enum",
			}, "null"}, "default": "false"},
			str("db"), optionalString("sequence"), optionalLong("ts_us"), optionalLong("ts_ns"),
			str("schema"), str("table"),
			optionalLong("txId"), optionalLong("lsn"), optionalLong("xmin"),
		},
		"connect.name": sourceRecordName,
	}
}

func transactionSchema() map[string]any {
	return map[string]any{
		"type": "record", "name": "block", "namespace": "event",
		"fields": []any{
			map[string]any{"name": "id", "type": "string"},
			map[string]any{"name": "total_order", "type": "long"},
			map[string]any{"name": "data_collection_order", "type": "long"},
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
func (ts *TableSchemas) EncodeEnvelope(ev *change.Event) ([]byte, error) {
	native := map[string]any{
		"op":    ev.Op.String(),
		"ts_ms": goavro.Union("long", ev.TsMs),
		"ts_us": goavro.Union("long", ev.TsMs*1000),
		"ts_ns": goavro.Union("long", ev.TsMs*1_000_000),
	}
	for _, side := range []struct {
		name string
		row  change.Row
	}{{"before", ev.Before}, {"after", ev.After}} {
		if side.row == nil {
			native[side.name] = nil
			continue
		}
		r, err := ts.value.encode(side.row)
		if err != nil {
			return nil, fmt.Errorf("encode %s of %s: %w", side.name, ts.Topic, err)
		}
		native[side.name] = goavro.Union(ts.value.fullName, r)
	}
	native["source"] = sourceNative(ev.Source)
	native["transaction"] = transactionNative(ev.Transaction)
	return ts.envCodec.BinaryFromNative(nil, native)
}

func sourceNative(s change.Source) map[string]any {
	return map[string]any{
		"version": s.Version, "connector": s.Connector, "name": s.Name, "ts_ms": s.TsMs,
		"snapshot": goavro.Union("string", s.Snapshot), "db": s.DB,
		"sequence": goavro.Union("string", s.Sequence),
		"ts_us":    goavro.Union("long", s.TsUs), "ts_ns": goavro.Union("long", s.TsNs),
		"schema": s.Schema, "table": s.Table,
		"txId": goavro.Union("long", s.TxID), "lsn": goavro.Union("long", int64(s.LSN)),
		"xmin": nil,
	}
}

func transactionNative(tx *change.Transaction) any {
	if tx == nil {
		return nil
	}
	return goavro.Union(transactionRecordName, map[string]any{
		"id": tx.ID, "total_order": tx.TotalOrder, "data_collection_order": tx.DataCollectionOrder,
	})
}
