package serde

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// DecodeDebezium decodes a change record that one of Debezium's connectors
// wrote (MySQL, MariaDB, MongoDB or PostgreSQL) in any of the forms Kafka
// Connect writes: Avro in the Confluent wire format (schemas from the
// registry), or JSON from the JsonConverter with schemas.enable=true or
// false. The form is told by the record's first byte, key and value apart.
// It returns the event, with its position made from the source coordinates
// ([change.DebeziumPosition]), and the row's key.
//
// A MongoDB change's document (Debezium's after and before, a JSON string)
// becomes a row of its top-level fields, _id among them; its key is
// {"_id": ...}; a delete, which carries no document, gets the key as its
// before image. Extended JSON values become the Go values of [change.Row]:
// $oid a string of hex digits, $numberLong an int64, $numberDecimal a
// *big.Rat, $date a time.Time, $binary a []byte; embedded documents stay
// JSON text (a string). A MongoDB update without its document (capture.mode
// change_streams, or a document deleted before the connector looked it up)
// is an error: rows are read whole.
//
// Without schemas a value is what JSON says: numbers are int64 (or float64
// when not integral), strings stay strings (a decimal under Debezium's
// default decimal.handling.mode=precise is then base64 text: use string or
// double), and nested records become JSON text.
//
// A nil value (a tombstone) decodes to a nil event and no error.
func (d *Decoder) DecodeDebezium(ctx context.Context, key, value []byte) (*change.Event, change.Row, error) {
	if value == nil {
		return nil, nil, nil
	}
	ev, doc, err := d.decodeDebeziumValue(ctx, value)
	if err != nil {
		return nil, nil, err
	}
	if len(key) == 0 {
		return nil, nil, errors.New("a change record without a key: Debezium keys every change by its row's primary key (a table without one cannot be read)")
	}
	k, err := d.decodeDebeziumKey(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("decode key: %w", err)
	}
	if doc {
		id, ok := k["id"].(string)
		if !ok || len(k) != 1 {
			return nil, nil, fmt.Errorf("a MongoDB key is {\"id\": \"<the document's _id as JSON>\"}, not %v", k)
		}
		v, err := parseExtendedJSON([]byte(id))
		if err != nil {
			return nil, nil, fmt.Errorf("key: %w", err)
		}
		k = change.Row{"_id": v}
		switch {
		case ev.Op == change.OpDelete && ev.Before == nil:
			ev.Before = change.Row{"_id": v}
		case ev.Op == change.OpUpdate && ev.After == nil:
			return nil, nil, errors.New("a MongoDB update without the document: set the connector's capture.mode to change_streams_update_full (its default) so that updates carry it; or the document was deleted before the connector looked it up, and its delete follows")
		}
	}
	return ev, k, nil
}

// errNotEnvelope is the error of a record that is not a row change: a
// transaction metadata record, a logical decoding message, a schema change.
var errNotEnvelope = errors.New("not a change envelope (a record with before, after, source and op), as transaction metadata, logical decoding messages and schema changes are not: read only the change topics of tables as Debezium tables (topologies.DebeziumTable)")

var errMessage = fmt.Errorf("a logical decoding message (op m): %w", errNotEnvelope)

// decodeDebeziumValue decodes an envelope; doc reports a MongoDB one (its
// rows are documents).
func (d *Decoder) decodeDebeziumValue(ctx context.Context, value []byte) (ev *change.Event, doc bool, err error) {
	var m map[string]any
	switch {
	case value[0] == 0:
		r, id, body, err := d.readerOf(ctx, value)
		if err != nil {
			return nil, false, err
		}
		if !r.envelope {
			return nil, false, fmt.Errorf("schema id %d: %s: %w", id, r.name, errNotEnvelope)
		}
		native, _, err := r.codec.NativeFromBinary(body)
		if err != nil {
			return nil, false, fmt.Errorf("decode envelope with schema id %d: %w", id, err)
		}
		m, _ = native.(map[string]any)
		ev, err = envelopeFromMap(m, r.document, func(v any) (change.Row, error) { return r.row.decode(v) })
		if err != nil {
			return nil, false, fmt.Errorf("decode envelope with schema id %d: %w", id, err)
		}
		return ev, r.document, nil
	case isJSON(value):
		payload, schema, err := splitConnectJSON(value)
		if err != nil {
			return nil, false, err
		}
		if m, _ = payload.(map[string]any); m == nil || m["op"] == nil || m["source"] == nil {
			return nil, false, errNotEnvelope
		}
		if m["op"] == "m" {
			return nil, false, errMessage
		}
		var rs *rowSchema
		doc = isDocumentEnvelope(m)
		if schema != nil && !doc {
			if rs, err = connectRowSchema(schema, "after"); err != nil {
				return nil, false, err
			}
		}
		ev, err = envelopeFromMap(m, doc, func(v any) (change.Row, error) { return jsonRow(rs, v) })
		if err != nil {
			return nil, false, fmt.Errorf("decode JSON envelope: %w", err)
		}
		return ev, doc, nil
	}
	return nil, false, errors.New("neither Avro in the Confluent wire format (magic byte 0) nor JSON: not a record a Debezium connector wrote with the Avro or JSON converter")
}

// decodeDebeziumKey decodes a key in either form.
func (d *Decoder) decodeDebeziumKey(ctx context.Context, key []byte) (change.Row, error) {
	if key[0] == 0 {
		return d.DecodeKey(ctx, key)
	}
	if !isJSON(key) {
		return nil, errors.New("neither Avro in the Confluent wire format nor JSON")
	}
	payload, schema, err := splitConnectJSON(key)
	if err != nil {
		return nil, err
	}
	var rs *rowSchema
	if schema != nil {
		if rs, err = connectRowSchemaOf(schema); err != nil {
			return nil, err
		}
	}
	return jsonRow(rs, payload)
}

func isJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// splitConnectJSON reads the JsonConverter's form: {"schema": ...,
// "payload": ...} with schemas.enable=true, the payload alone without.
func splitConnectJSON(b []byte) (payload any, schema map[string]any, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("parse JSON: %w", err)
	}
	m, _ := v.(map[string]any)
	if s, ok := m["schema"].(map[string]any); ok && len(m) == 2 {
		if p, ok := m["payload"]; ok {
			return p, s, nil
		}
	}
	return v, nil, nil
}

// isDocumentEnvelope reports a MongoDB envelope: its source names the
// connector mongodb.
func isDocumentEnvelope(m map[string]any) bool {
	src, _ := unwrapUnion(m["source"]).(map[string]any)
	return src["connector"] == "mongodb"
}

// envelopeFromMap reads an envelope in goavro's native form or parsed JSON;
// row decodes a relational before or after image.
func envelopeFromMap(m map[string]any, doc bool, row func(any) (change.Row, error)) (*change.Event, error) {
	ev := &change.Event{}
	op, _ := unwrapUnion(m["op"]).(string)
	if op == "m" {
		return nil, errMessage
	}
	var err error
	if ev.Op, err = change.ParseOp(op); err != nil {
		return nil, err
	}
	ev.TsMs = number(m["ts_ms"])
	for _, side := range []struct {
		name string
		dst  *change.Row
	}{{"before", &ev.Before}, {"after", &ev.After}} {
		v := unwrapUnion(m[side.name])
		if v == nil {
			continue
		}
		if doc {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: a MongoDB document is a JSON string, not %T", side.name, v)
			}
			*side.dst, err = parseDocument(s)
		} else {
			*side.dst, err = row(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side.name, err)
		}
	}
	src, ok := unwrapUnion(m["source"]).(map[string]any)
	if !ok {
		return nil, errors.New("the envelope has no source block")
	}
	ev.Source = sourceFromNative(src)
	if doc { // a MongoDB source names its collection, not a table
		ev.Source.Table, _ = unwrapUnion(src["collection"]).(string)
	}
	ev.Transaction = transactionFromNative(m["transaction"])
	if ev.Position, err = change.DebeziumPosition(ev.Source, ev.Transaction); err != nil {
		return nil, err
	}
	return ev, nil
}

// number reads an integer in goavro's native form or parsed JSON.
func number(v any) int64 {
	switch n := unwrapUnion(v).(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return 0
}

// connectRowSchema returns the row schema of the envelope's field (before or
// after) from a Kafka Connect JSON schema.
func connectRowSchema(envelope map[string]any, field string) (*rowSchema, error) {
	fields, _ := envelope["fields"].([]any)
	for _, f := range fields {
		if fm, _ := f.(map[string]any); fm["field"] == field {
			return connectRowSchemaOf(fm)
		}
	}
	return nil, fmt.Errorf("the envelope's schema has no field %s", field)
}

// connectRowSchemaOf reads a Connect struct schema as a row of columns.
func connectRowSchemaOf(s map[string]any) (*rowSchema, error) {
	if s["type"] != "struct" {
		return nil, fmt.Errorf("schema of type %v is not a struct of columns", s["type"])
	}
	name, _ := s["name"].(string)
	rs := &rowSchema{fullName: name}
	fields, _ := s["fields"].([]any)
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		col, _ := fm["field"].(string)
		ct, err := columnTypeFromSchema(connectAsAvro(fm), nil)
		if err != nil {
			return nil, fmt.Errorf("struct %s field %s: %w", name, col, err)
		}
		opt, _ := fm["optional"].(bool)
		rs.fields = append(rs.fields, rowField{name: col, t: ct, nullable: opt})
	}
	return rs, nil
}

// connectAsAvro writes a Connect JSON schema as the Avro schema Confluent's
// AvroConverter would make of it, as far as columnTypeFromSchema reads it.
func connectAsAvro(s map[string]any) any {
	typ, _ := s["type"].(string)
	av := map[string]any{}
	switch typ {
	case "int8", "int16", "int32":
		av["type"] = "int"
		if typ == "int16" {
			av["connect.type"] = "int16"
		}
	case "int64":
		av["type"] = "long"
	case "float32":
		av["type"] = "float"
	case "float64":
		av["type"] = "double"
	case "boolean", "string", "bytes":
		av["type"] = typ
	case "array":
		items, _ := s["items"].(map[string]any)
		av["type"] = "array"
		av["items"] = connectAsAvro(items)
	default: // struct, map: only VariableScaleDecimal is a column type
		av["type"] = typ
	}
	if name, ok := s["name"].(string); ok {
		av["connect.name"] = name
		params, _ := s["parameters"].(map[string]any)
		switch name {
		case connectDecimal:
			scale, _ := strconv.Atoi(fmt.Sprint(params["scale"]))
			prec, _ := strconv.Atoi(fmt.Sprint(params["connect.decimal.precision"]))
			av["scale"], av["precision"] = float64(scale), float64(prec)
		case connectEnum:
			av["connect.parameters"] = params
		}
	}
	return av
}

// jsonRow reads a row (or key) from parsed JSON: with rs, each column as its
// Connect type says, into the values a Decoder of Avro gives; without, as
// JSON says.
func jsonRow(rs *rowSchema, v any) (change.Row, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a row is a JSON object, not %T", v)
	}
	if rs == nil {
		row := make(change.Row, len(m))
		for k, x := range m {
			row[k] = plainJSONValue(x)
		}
		return row, nil
	}
	native := make(map[string]any, len(rs.fields))
	for _, f := range rs.fields {
		x, err := jsonNative(f.t, m[f.name])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.name, err)
		}
		native[f.name] = x
	}
	return rs.decode(native)
}

// jsonNative converts a JSON value to goavro's native form of t.
func jsonNative(t columnType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := fmt.Errorf("JSON value %v does not fit %s", v, t)
	switch t.kind {
	case kindInt16, kindInt, kindDate, kindTime:
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i < math.MinInt32 || i > math.MaxInt32 {
			return nil, bad
		}
		return int32(i), nil
	case kindLong, kindMicroTime, kindTimestamp, kindMicroTimestamp, kindMicroDuration:
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return nil, bad
		}
		return i, nil
	case kindFloat, kindDouble:
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil {
			if s, isStr := v.(string); isStr { // JsonConverter writes NaN and infinities as strings
				if f, err = strconv.ParseFloat(s, 64); err == nil {
					ok = true
				}
			}
			if !ok {
				return nil, bad
			}
		}
		if t.kind == kindFloat {
			return float32(f), nil
		}
		return f, nil
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, bad
	case kindBytes, kindDecimal:
		s, ok := v.(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if !ok || err != nil {
			return nil, bad
		}
		if t.kind == kindDecimal {
			return new(big.Rat).SetFrac(fromTwosComplement(b), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(t.scale)), nil)), nil
		}
		return b, nil
	case kindVariableDecimal:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, bad
		}
		scale, err := jsonNative(columnType{kind: kindInt}, m["scale"])
		if err != nil {
			return nil, bad
		}
		b, err := jsonNative(columnType{kind: kindBytes}, m["value"])
		if err != nil {
			return nil, bad
		}
		return map[string]any{"scale": scale, "value": b}, nil
	case kindArray:
		xs, ok := v.([]any)
		if !ok {
			return nil, bad
		}
		out := make([]any, len(xs))
		for i, x := range xs {
			e, err := jsonNative(*t.elem, x)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i+1, err)
			}
			out[i] = e
		}
		return out, nil
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return nil, bad
}

// plainJSONValue is a schemaless JSON value as a Row value.
func plainJSONValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSONValue(e)
		}
		return out
	case map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return v
}

// parseDocument reads a MongoDB document in extended JSON (strict or
// relaxed) as a row of its top-level fields.
func parseDocument(s string) (change.Row, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("a MongoDB document is a JSON object: %q", s)
	}
	row := make(change.Row, len(m))
	for k, v := range m {
		x, err := extendedValue(v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		row[k] = x
	}
	return row, nil
}

// parseExtendedJSON reads one extended JSON value (a MongoDB key's _id).
func parseExtendedJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse extended JSON %q: %w", b, err)
	}
	return extendedValue(v)
}

// extendedValue converts a value of MongoDB's extended JSON to a Row value.
func extendedValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return plainJSONValue(x), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = extendedValue(e); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 || len(x) == 2 {
			for k, inner := range x {
				if strings.HasPrefix(k, "$") {
					return extendedType(k, inner, x)
				}
			}
		}
		b, _ := json.Marshal(x) // an embedded document stays JSON text
		return string(b), nil
	}
	return v, nil
}

func extendedType(k string, inner any, whole map[string]any) (any, error) {
	str := func() (string, error) {
		s, ok := inner.(string)
		if !ok {
			return "", fmt.Errorf("%s: want a string, got %v", k, inner)
		}
		return s, nil
	}
	switch k {
	case "$oid", "$symbol", "$uuid":
		return str()
	case "$numberLong", "$numberInt":
		s, err := str()
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", k, s, err)
		}
		return n, nil
	case "$numberDouble":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return strconv.ParseFloat(strings.Replace(s, "Infinity", "Inf", 1), 64)
	case "$numberDecimal":
		s, err := str()
		if err != nil {
			return nil, err
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, fmt.Errorf("$numberDecimal %q has no exact value (NaN or infinite)", s)
		}
		return r, nil
	case "$date":
		switch d := inner.(type) {
		case json.Number:
			ms, err := d.Int64()
			if err != nil {
				return nil, fmt.Errorf("$date %v: %w", d, err)
			}
			return time.UnixMilli(ms).UTC(), nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, d)
			if err != nil {
				return nil, fmt.Errorf("$date %q: %w", d, err)
			}
			return t.UTC(), nil
		case map[string]any:
			ms, err := extendedValue(d)
			if n, ok := ms.(int64); ok && err == nil {
				return time.UnixMilli(n).UTC(), nil
			}
		}
		return nil, fmt.Errorf("$date %v: want milliseconds or an ISO-8601 string", inner)
	case "$binary":
		var s string
		switch b := inner.(type) {
		case string: // the legacy form, with $type beside it
			s = b
		case map[string]any:
			s, _ = b["base64"].(string)
		}
		return base64.StdEncoding.DecodeString(s)
	case "$timestamp":
		m, _ := inner.(map[string]any)
		t, _ := extendedValue(m["t"])
		i, _ := extendedValue(m["i"])
		tn, ok1 := t.(int64)
		in, ok2 := i.(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("$timestamp %v: want {t, i}", inner)
		}
		return tn<<32 | in, nil
	}
	b, _ := json.Marshal(whole) // $regularExpression, $minKey, ...: JSON text
	return string(b), nil
}
