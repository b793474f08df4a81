package serde

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// reader decodes Avro bodies written with one schema: a table's Key record or
// its Envelope. It is built from the schema text alone, so a consumer reads
// whatever schema version a record names.
type reader struct {
	codec    *goavro.Codec
	row      *rowSchema // the Key record, or the envelope's Value record
	rowErr   error      // why the schema is not a record of columns
	envelope bool
	document bool   // a MongoDB envelope: before and after are JSON documents
	name     string // the schema's full name
}

func newReader(schema string) (*reader, error) {
	codec, err := newCodec(schema)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	var top map[string]any
	if err := json.Unmarshal([]byte(schema), &top); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	r := &reader{codec: codec, name: fullName(top)}
	named := map[string]map[string]any{}
	if name, _ := top["name"].(string); name == "Envelope" {
		r.envelope = true
		before := field(top, "before")
		rec := recordIn(before)
		if t, _ := nonNull(before); rec == nil && isJSONString(t) {
			r.document = true // Debezium's MongoDB connector
			r.row = &rowSchema{fullName: fullName(top)}
			return r, nil
		}
		if rec == nil {
			return nil, fmt.Errorf("schema %s: field before is not [null, record]", fullName(top))
		}
		r.row, err = rowSchemaOf(rec, named)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	// Any other record: a key, or something only DecodeTransaction reads.
	r.row, r.rowErr = rowSchemaOf(top, named)
	return r, nil
}

// isJSONString reports a string of Debezium's semantic type
// io.debezium.data.Json.
func isJSONString(t any) bool {
	m, _ := t.(map[string]any)
	return m["type"] == "string" && m["connect.name"] == connectJSON
}

func fullName(rec map[string]any) string {
	name, _ := rec["name"].(string)
	if ns, _ := rec["namespace"].(string); ns != "" {
		return ns + "." + name
	}
	return name
}

func field(rec map[string]any, name string) any {
	fields, _ := rec["fields"].([]any)
	for _, f := range fields {
		if fm, ok := f.(map[string]any); ok && fm["name"] == name {
			return fm["type"]
		}
	}
	return nil
}

// recordIn returns the record schema inside t, a record or ["null", record].
func recordIn(t any) map[string]any {
	switch x := t.(type) {
	case map[string]any:
		if x["type"] == "record" {
			return x
		}
	case []any:
		for _, m := range x {
			if rec := recordIn(m); rec != nil {
				return rec
			}
		}
	}
	return nil
}

func rowSchemaOf(rec map[string]any, named map[string]map[string]any) (*rowSchema, error) {
	rs := &rowSchema{fullName: fullName(rec)}
	fields, _ := rec["fields"].([]any)
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		name, _ := fm["name"].(string)
		t, nullable := nonNull(fm["type"])
		ct, err := columnTypeFromSchema(t, named)
		if err != nil {
			return nil, fmt.Errorf("record %s field %s: %w", rs.fullName, name, err)
		}
		rs.fields = append(rs.fields, rowField{name: name, t: ct, nullable: nullable})
	}
	return rs, nil
}

// nonNull returns the member of a ["null", T] union besides null, and
// whether t was such a union; any other t is returned as it is.
func nonNull(t any) (any, bool) {
	u, ok := t.([]any)
	if !ok {
		return t, false
	}
	nullable := false
	for _, m := range u {
		if m == "null" {
			nullable = true
		} else {
			t = m
		}
	}
	return t, nullable
}

// columnTypeFromSchema is the inverse of columnType.schema: it reads the Avro
// type and Debezium's connect.name.
func columnTypeFromSchema(t any, named map[string]map[string]any) (columnType, error) {
	switch x := t.(type) {
	case string:
		switch x {
		case "int":
			return columnType{kind: kindInt}, nil
		case "long":
			return columnType{kind: kindLong}, nil
		case "float":
			return columnType{kind: kindFloat}, nil
		case "double":
			return columnType{kind: kindDouble}, nil
		case "boolean":
			return columnType{kind: kindBool}, nil
		case "bytes":
			return columnType{kind: kindBytes}, nil
		case "string":
			return columnType{kind: kindString}, nil
		case connectVariableScale:
			return columnType{kind: kindVariableDecimal}, nil
		}
		if k, ok := geometryKinds[x]; ok { // a record defined earlier in the schema
			return columnType{kind: k}, nil
		}
		return columnType{}, fmt.Errorf("unsupported Avro type %q", x)
	case map[string]any:
		switch x["connect.name"] {
		case connectDecimal:
			scale, _ := x["scale"].(float64)
			prec, _ := x["precision"].(float64)
			return columnType{kind: kindDecimal, scale: int(scale), prec: int(prec)}, nil
		case connectVariableScale:
			return columnType{kind: kindVariableDecimal}, nil
		case connectDate:
			return columnType{kind: kindDate}, nil
		case connectTime:
			return columnType{kind: kindTime}, nil
		case connectMicroTime:
			return columnType{kind: kindMicroTime}, nil
		case connectTimestamp:
			return columnType{kind: kindTimestamp}, nil
		case connectMicroTimestamp:
			return columnType{kind: kindMicroTimestamp}, nil
		case connectZonedTime:
			return columnType{kind: kindZonedTime}, nil
		case connectZonedTimestamp:
			return columnType{kind: kindZonedTimestamp}, nil
		case connectMicroDuration:
			return columnType{kind: kindMicroDuration}, nil
		case connectUUID:
			return columnType{kind: kindUUID}, nil
		case connectJSON:
			return columnType{kind: kindJSON}, nil
		case connectXML:
			return columnType{kind: kindXML}, nil
		case connectLtree:
			return columnType{kind: kindLtree}, nil
		case connectEnum:
			params, _ := x["connect.parameters"].(map[string]any)
			allowed, _ := params["allowed"].(string)
			return columnType{kind: kindEnum, allowed: allowed}, nil
		case connectBits:
			params, _ := x["connect.parameters"].(map[string]any)
			length, _ := strconv.Atoi(fmt.Sprint(params["length"]))
			return columnType{kind: kindBits, length: length}, nil
		case connectTsvector:
			return columnType{kind: kindTsvector}, nil
		}
		if name, _ := x["connect.name"].(string); geometryKinds[name] != 0 {
			return columnType{kind: geometryKinds[name]}, nil
		}
		if x["connect.type"] == "int16" {
			return columnType{kind: kindInt16}, nil
		}
		if x["type"] == "array" {
			items, _ := nonNull(x["items"])
			elem, err := columnTypeFromSchema(items, named)
			if err != nil {
				return columnType{}, fmt.Errorf("array items: %w", err)
			}
			return columnType{kind: kindArray, elem: &elem}, nil
		}
		return columnTypeFromSchema(x["type"], named)
	}
	return columnType{}, fmt.Errorf("unsupported Avro type %v", t)
}

// decodeKey decodes a Key record body.
func (r *reader) decodeKey(body []byte) (change.Row, error) {
	if r.rowErr != nil {
		return nil, r.rowErr
	}
	native, _, err := r.codec.NativeFromBinary(body)
	if err != nil {
		return nil, err
	}
	return r.row.decode(native)
}

// decodeEnvelope decodes an Envelope body.
func (r *reader) decodeEnvelope(body []byte) (*change.Event, error) {
	if !r.envelope {
		return nil, fmt.Errorf("schema %s is not a change envelope", r.row.fullName)
	}
	if r.document {
		return nil, fmt.Errorf("schema %s is a MongoDB change envelope: read its topic as a Debezium topic (topologies.DebeziumTable)", r.row.fullName)
	}
	native, _, err := r.codec.NativeFromBinary(body)
	if err != nil {
		return nil, err
	}
	m := native.(map[string]any)
	ev := &change.Event{}
	op, _ := m["op"].(string)
	if ev.Op, err = change.ParseOp(op); err != nil {
		return nil, err
	}
	if v := unwrapUnion(m["ts_ms"]); v != nil {
		ev.TsMs = v.(int64)
	}
	for _, side := range []struct {
		name string
		dst  *change.Row
	}{{"before", &ev.Before}, {"after", &ev.After}} {
		if v := unwrapUnion(m[side.name]); v != nil {
			if *side.dst, err = r.row.decode(v); err != nil {
				return nil, fmt.Errorf("%s: %w", side.name, err)
			}
		}
	}
	ev.Source = sourceFromNative(m["source"])
	ev.Transaction = transactionFromNative(m["transaction"])
	if ev.Position, err = positionOf(ev.Source, ev.Transaction); err != nil {
		return nil, err
	}
	return ev, nil
}

// sourceFromNative reads a source block in goavro's native form (or parsed
// JSON): cdcflow's, or any of the Debezium connectors' whose fields
// change.Source has.
func sourceFromNative(v any) change.Source {
	src, _ := v.(map[string]any)
	str := func(k string) string { s, _ := unwrapUnion(src[k]).(string); return s }
	long := func(k string) int64 { return number(src[k]) }
	return change.Source{
		Version: str("version"), Connector: str("connector"), Name: str("name"),
		TsMs: long("ts_ms"), Snapshot: str("snapshot"), DB: str("db"), Sequence: str("sequence"),
		TsUs: long("ts_us"), TsNs: long("ts_ns"), Schema: str("schema"), Table: str("table"),
		TxID: long("txId"), LSN: change.LSN(long("lsn")),
		Origin: str("origin"), OriginLSN: change.LSN(long("origin_lsn")),
		ServerID: long("server_id"), GTID: str("gtid"), File: str("file"), Pos: long("pos"),
		Row: int32(long("row")), Thread: long("thread"), Query: str("query"),
		Ord: int32(long("ord")), Lsid: str("lsid"), TxnNumber: long("txnNumber"), WallTime: long("wallTime"),
	}
}

func transactionFromNative(v any) *change.Transaction {
	tx, ok := unwrapUnion(v).(map[string]any)
	if !ok {
		return nil
	}
	id, _ := tx["id"].(string)
	return &change.Transaction{ID: id, TotalOrder: number(tx["total_order"]),
		DataCollectionOrder: number(tx["data_collection_order"]), CommitLSN: change.LSN(number(tx["commit_lsn"]))}
}

// positionOf recovers a change's position: transaction.commit_lsn and
// transaction.total_order for a change of a transaction; source.lsn and index
// 0 for one without (a snapshot read, a non-transactional message), which is
// where capture puts those. A transaction block without commit_lsn (records
// cdcflow wrote before it wrote the field, or another producer wrote) falls
// back to the first LSN of source.sequence, where cdcflow used to write the
// commit LSN: positions of older records stay what they were.
func positionOf(s change.Source, tx *change.Transaction) (change.Position, error) {
	if tx == nil {
		return change.Position{CommitLSN: s.LSN}, nil
	}
	if tx.TotalOrder < 0 || tx.TotalOrder > 1<<32-1 {
		return change.Position{}, fmt.Errorf("transaction.total_order %d out of range", tx.TotalOrder)
	}
	pos := change.Position{CommitLSN: tx.CommitLSN, Index: uint32(tx.TotalOrder)}
	if pos.CommitLSN == 0 && s.Sequence != "" {
		first, _, err := change.ParseSequence(s.Sequence)
		if err != nil {
			return change.Position{}, err
		}
		pos.CommitLSN = first
	}
	return pos, nil
}
