package serde

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// debeziumField is one field of a Kafka Connect schema as Debezium 2.7's
// PostgreSQL connector documents it (its JSON converter prints the same
// schema the Avro converter turns into Avro): name, Connect type, whether it
// is optional, and the semantic (named) type, if any.
type debeziumField struct {
	name, connectType string
	optional          bool
	semantic          string
}

// Debezium 2.7's envelope and source block for PostgreSQL, field by field,
// in order.
var (
	debeziumEnvelope = []debeziumField{
		{"before", "struct", true, "<prefix>.<schema>.<table>.Value"},
		{"after", "struct", true, "<prefix>.<schema>.<table>.Value"},
		{"source", "struct", false, "io.debezium.connector.postgresql.Source"},
		{"transaction", "struct", true, "event.block"},
		{"op", "string", false, ""},
		{"ts_ms", "int64", true, ""},
		{"ts_us", "int64", true, ""},
		{"ts_ns", "int64", true, ""},
	}
	debeziumSource = []debeziumField{
		{"version", "string", false, ""},
		{"connector", "string", false, ""},
		{"name", "string", false, ""},
		{"ts_ms", "int64", false, ""},
		{"snapshot", "string", true, "io.debezium.data.Enum"},
		{"db", "string", false, ""},
		{"sequence", "string", true, ""},
		{"ts_us", "int64", true, ""},
		{"ts_ns", "int64", true, ""},
		{"schema", "string", false, ""},
		{"table", "string", false, ""},
		{"txId", "int64", true, ""},
		{"lsn", "int64", true, ""},
		{"xmin", "int64", true, ""},
	}
	debeziumTransaction = []debeziumField{
		{"id", "string", false, ""},
		{"total_order", "int64", false, ""},
		{"data_collection_order", "int64", false, ""},
	}
)

// avroTypeOf names the Avro type Confluent's AvroConverter writes for a
// Connect type.
var avroTypeOf = map[string]string{"string": "string", "int64": "long", "struct": "record"}

// checkFields compares the fields of an Avro record schema with Debezium's
// Connect fields.
func checkFields(t *testing.T, where string, rec map[string]any, want []debeziumField, ns string) {
	t.Helper()
	fields, _ := rec["fields"].([]any)
	if len(fields) != len(want) {
		t.Errorf("%s has %d fields, Debezium %d", where, len(fields), len(want))
		return
	}
	for i, w := range want {
		f := fields[i].(map[string]any)
		if f["name"] != w.name {
			t.Errorf("%s field %d is %v, Debezium's is %s", where, i, f["name"], w.name)
			continue
		}
		typ, optional := f["type"], false
		if u, ok := typ.([]any); ok {
			for _, m := range u {
				if m == "null" {
					optional = true
				} else {
					typ = m
				}
			}
		}
		if optional != w.optional {
			t.Errorf("%s.%s optional = %v, Debezium: %v", where, w.name, optional, w.optional)
		}
		avroType, semantic := typ, ""
		if m, ok := typ.(map[string]any); ok {
			avroType = m["type"]
			if name, ok := m["connect.name"].(string); ok {
				semantic = name
			}
		} else if s, ok := typ.(string); ok && !isPrimitive(s) {
			avroType, semantic = "record", s // a reference to a record defined before
			if !strings.Contains(s, ".") {
				semantic = ns + "." + s
			}
		}
		if avroType != avroTypeOf[w.connectType] {
			t.Errorf("%s.%s is Avro %v, Debezium's Connect %s is Avro %s", where, w.name, avroType, w.connectType, avroTypeOf[w.connectType])
		}
		wantSemantic := strings.ReplaceAll(w.semantic, "<prefix>.<schema>.<table>", ns)
		if semantic != wantSemantic {
			t.Errorf("%s.%s names %q, Debezium %q", where, w.name, semantic, wantSemantic)
		}
	}
}

// TestEnvelopeMatchesDebeziumFieldByField checks the envelope schema against
// Debezium's documented one: names, order, types, optionality, semantic
// types, and the source block's snapshot enum.
func TestEnvelopeMatchesDebeziumFieldByField(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(ts.Envelope), &env); err != nil {
		t.Fatal(err)
	}
	const ns = "shop.public.orders"
	if env["connect.name"] != ns+".Envelope" || env["connect.version"] != float64(2) {
		t.Errorf("envelope is %v version %v, Debezium: %s.Envelope version 2", env["connect.name"], env["connect.version"], ns)
	}
	checkFields(t, "Envelope", env, debeziumEnvelope, ns)
	fields := env["fields"].([]any)
	record := func(i int) map[string]any { return recordIn(fields[i].(map[string]any)["type"]) }
	checkFields(t, "Source", record(2), debeziumSource, ns)
	checkFields(t, "transaction", record(3), debeziumTransaction, ns)
	snapshot := record(2)["fields"].([]any)[4].(map[string]any)
	enum := snapshot["type"].([]any)[0].(map[string]any)
	params, _ := enum["connect.parameters"].(map[string]any)
	if params["allowed"] != "true,last,false,incremental" || snapshot["default"] != "false" {
		t.Errorf("source.snapshot is %v, Debezium: Enum of true,last,false,incremental with default false", snapshot)
	}
}

// TestEnvelopesPerOperationGolden writes one envelope of each operation
// capture emits, in Avro's JSON form, next to golden files that show them as
// Debezium documents them: create (before null), update (before null under
// REPLICA IDENTITY DEFAULT), delete (key-only before), snapshot read.
func TestEnvelopesPerOperationGolden(t *testing.T) {
	ts, err := NewTableSchemas("shop", &change.Table{Schema: "public", Name: "customers", Columns: []change.Column{
		{Name: "id", Type: "int4", Key: true},
		{Name: "first_name", Type: "varchar"},
		{Name: "email", Type: "varchar", Nullable: true},
		{Name: "balance", Type: "numeric", TypeMod: (10<<16 | 2) + 4, Nullable: true},
		{Name: "created_at", Type: "timestamptz"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	row := change.Row{"id": int32(1004), "first_name": "Anne", "email": "annek@noanswer.org", "balance": big.NewRat(1050, 100), "created_at": created}
	commit, lsn := change.LSN(0x1702370), change.LSN(0x17022F8)
	source := func(snapshot string) change.Source {
		return change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795251600000, Snapshot: snapshot,
			DB: "postgres", Sequence: change.SequenceFor(commit, lsn), TsUs: 1795251600000000, TsNs: 1795251600000000000,
			Schema: "public", Table: "customers", TxID: 555, LSN: lsn}
	}
	tx := &change.Transaction{ID: "555:24126320", TotalOrder: 1, DataCollectionOrder: 1}
	for _, tc := range []struct {
		name string
		ev   *change.Event
	}{
		{"create", &change.Event{Op: change.OpCreate, After: row, Source: source("false"), Transaction: tx, TsMs: 1795251600123}},
		{"update", &change.Event{Op: change.OpUpdate, After: row, Source: source("false"), Transaction: tx, TsMs: 1795251600123}},
		{"delete", &change.Event{Op: change.OpDelete, Before: change.Row{"id": int32(1004)}, Source: source("false"), Transaction: tx, TsMs: 1795251600123}},
		{"read", &change.Event{Op: change.OpRead, After: row, Source: source("last"), TsMs: 1795251600123}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := ts.EncodeEnvelope(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			native, _, err := ts.envCodec.NativeFromBinary(body)
			if err != nil {
				t.Fatal(err)
			}
			text, err := ts.envCodec.TextualFromNative(nil, native)
			if err != nil {
				t.Fatal(err)
			}
			var pretty strings.Builder
			var v any
			json.Unmarshal(text, &v)
			enc := json.NewEncoder(&pretty)
			enc.SetIndent("", "  ")
			enc.Encode(v)
			golden(t, fmt.Sprintf("envelope_%s.json", tc.name), strings.TrimSuffix(pretty.String(), "\n"))
		})
	}
}
