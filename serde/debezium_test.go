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

// debeziumField is one field of a Kafka Connect schema as Debezium 3.6's
// PostgreSQL connector builds it (its JSON converter prints the same schema
// the Avro converter turns into Avro): name, Connect type, whether it is
// optional, and the semantic (named) type, if any.
type debeziumField struct {
	name, connectType string
	optional          bool
	semantic          string
}

// debeziumRecord is a Connect struct schema: its name, its version
// (connect.version in Avro) and its fields in order.
type debeziumRecord struct {
	name    string
	version int // 0 when Debezium sets none
	fields  []debeziumField
}

// Debezium 3.6's schemas for PostgreSQL, field by field, in order: the
// envelope (Envelope.defineSchema, version 2), the source block
// (SchemaFactory.sourceInfoSchemaBuilder, version 1, then
// PostgresSourceInfoStructMaker's fields), the transaction block
// (SchemaFactory.transactionBlockSchema) and the transaction topic's key and
// value (transactionKeySchema, transactionValueSchema and the
// event.collection items of data_collections).
var (
	debeziumEnvelope = debeziumRecord{"<prefix>.<schema>.<table>.Envelope", 2, []debeziumField{
		{"before", "struct", true, "<prefix>.<schema>.<table>.Value"},
		{"after", "struct", true, "<prefix>.<schema>.<table>.Value"},
		{"source", "struct", false, "io.debezium.connector.postgresql.Source"},
		{"transaction", "struct", true, "event.block"},
		{"op", "string", false, ""},
		{"ts_ms", "int64", true, ""},
		{"ts_us", "int64", true, ""},
		{"ts_ns", "int64", true, ""},
	}}
	debeziumSource = debeziumRecord{"io.debezium.connector.postgresql.Source", 1, []debeziumField{
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
		{"origin", "string", true, ""},
		{"origin_lsn", "int64", true, ""},
	}}
	debeziumTransaction = debeziumRecord{"event.block", 1, []debeziumField{
		{"id", "string", false, ""},
		{"total_order", "int64", false, ""},
		{"data_collection_order", "int64", false, ""},
	}}
	debeziumTransactionKey = debeziumRecord{"io.debezium.connector.common.TransactionMetadataKey", 1, []debeziumField{
		{"id", "string", false, ""},
	}}
	debeziumTransactionValue = debeziumRecord{"io.debezium.connector.common.TransactionMetadataValue", 1, []debeziumField{
		{"status", "string", false, ""},
		{"id", "string", false, ""},
		{"event_count", "int64", true, ""},
		{"data_collections", "array", true, ""},
		{"ts_ms", "int64", false, ""},
	}}
	debeziumDataCollection = debeziumRecord{"event.collection", 1, []debeziumField{
		{"data_collection", "string", false, ""},
		{"event_count", "int64", false, ""},
	}}
	// cdcflowCommitLSN is the one field cdcflow adds to a Debezium schema:
	// last in the transaction block, optional, where Debezium's DBZ-2353
	// proposes it.
	cdcflowCommitLSN = debeziumField{"commit_lsn", "int64", true, ""}
)

// avroTypeOf names the Avro type Confluent's AvroConverter writes for a
// Connect type.
var avroTypeOf = map[string]string{"string": "string", "int64": "long", "struct": "record", "array": "array"}

// checkRecord compares an Avro record schema with a Debezium Connect struct
// schema: connect.name, connect.version and the fields.
func checkRecord(t *testing.T, rec map[string]any, want debeziumRecord, ns string) {
	t.Helper()
	name := strings.ReplaceAll(want.name, "<prefix>.<schema>.<table>", ns)
	version, _ := rec["connect.version"].(float64)
	if rec["connect.name"] != name || int(version) != want.version {
		t.Errorf("record %v has connect.name %v and connect.version %v, Debezium: %s, version %d", rec["name"], rec["connect.name"], rec["connect.version"], name, want.version)
	}
	checkFields(t, name, rec, want.fields, ns)
}

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
		typ, optional := nonNull(f["type"])
		if optional != w.optional {
			t.Errorf("%s.%s optional = %v, Debezium: %v", where, w.name, optional, w.optional)
		}
		if _, hasDefault := f["default"]; optional && !hasDefault {
			t.Errorf("%s.%s is optional without a default; AvroData writes one", where, w.name)
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

func parseSchema(t *testing.T, schema string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(schema), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEnvelopeMatchesDebeziumFieldByField checks the envelope schema against
// Debezium 3.6's: names, order, types, optionality, semantic types and
// versions of the envelope, the source block (with origin and origin_lsn)
// and the transaction block, to which cdcflow adds commit_lsn only; and the
// source block's snapshot enum.
func TestEnvelopeMatchesDebeziumFieldByField(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	env := parseSchema(t, ts.Envelope)
	const ns = "shop.public.orders"
	checkRecord(t, env, debeziumEnvelope, ns)
	fields := env["fields"].([]any)
	record := func(i int) map[string]any { return recordIn(fields[i].(map[string]any)["type"]) }
	checkRecord(t, record(2), debeziumSource, ns)
	tx := record(3)
	checkRecord(t, tx, debeziumRecord{debeziumTransaction.name, debeziumTransaction.version,
		append(append([]debeziumField{}, debeziumTransaction.fields...), cdcflowCommitLSN)}, ns)

	// The enum of SnapshotRecord's values, in their order, lowercased;
	// optional with default "false", so [enum, "null"] with the default.
	snapshot := record(2)["fields"].([]any)[4].(map[string]any)
	enum := snapshot["type"].([]any)[0].(map[string]any)
	params, _ := enum["connect.parameters"].(map[string]any)
	if params["allowed"] != "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental" ||
		snapshot["default"] != "false" || enum["connect.default"] != "false" || enum["connect.version"] != float64(1) ||
		snapshot["type"].([]any)[1] != "null" {
		t.Errorf("source.snapshot is %v, Debezium: Enum v1 of true,first,first_in_data_collection,last_in_data_collection,last,false,incremental, [enum, null] with default false", snapshot)
	}
}

// TestTransactionTopicMatchesDebezium checks the transaction topic's key and
// value schemas against Debezium 3.6's: connect.version 1 on both, and
// data_collections an optional array of optional event.collection records.
func TestTransactionTopicMatchesDebezium(t *testing.T) {
	schemas, err := transactionSchemas()
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, parseSchema(t, schemas[0]), debeziumTransactionKey, "")
	value := parseSchema(t, schemas[1])
	checkRecord(t, value, debeziumTransactionValue, "")
	array, _ := nonNull(field(value, "data_collections"))
	items, optional := nonNull(array.(map[string]any)["items"])
	if !optional {
		t.Errorf("data_collections items are %v, Debezium: optional event.collection records", array.(map[string]any)["items"])
	}
	checkRecord(t, items.(map[string]any), debeziumDataCollection, "")
	golden(t, "transaction.key.avsc", indentJSON(t, schemas[0]))
	golden(t, "transaction.value.avsc", indentJSON(t, schemas[1]))
}

// TestEnvelopesPerOperationGolden writes one envelope of each operation
// capture emits, in Avro's JSON form, next to golden files that show them as
// Debezium documents them: create (before null), update (before null under
// REPLICA IDENTITY DEFAULT), delete (key-only before), snapshot read; with
// source.sequence [last commit, change LSN], transaction.id <txId>:<change
// LSN> and cdcflow's transaction.commit_lsn, a transaction replicated
// from an origin, and a truncate (no before, no after).
func TestEnvelopesPerOperationGolden(t *testing.T) {
	ts, err := NewTableSchemas("shop", &change.Table{Schema: "public", Name: "customers", Columns: []change.Column{
		{Name: "id", Type: "int4", Key: true, Default: int32(0)}, // serial: Debezium's placeholder of nextval()
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
	lastCommit, lsn, commit := change.LSN(0x1701F40), change.LSN(0x17022F8), change.LSN(0x1702370)
	source := func(snapshot string) change.Source {
		return change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795251600000, Snapshot: snapshot,
			DB: "postgres", Sequence: change.SequenceFor(lastCommit, lsn), TsUs: 1795251600000000, TsNs: 1795251600000000000,
			Schema: "public", Table: "customers", TxID: 555, LSN: lsn}
	}
	tx := &change.Transaction{ID: fmt.Sprintf("555:%d", uint64(lsn)), TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: commit}
	replicated := source(change.SnapshotFalse)
	replicated.Origin, replicated.OriginLSN = "pg_16412", 0x3000148
	read := source(change.SnapshotLast)
	read.Sequence, read.TxID = change.SequenceFor(0, lsn), 0
	for _, tc := range []struct {
		name string
		ev   *change.Event
	}{
		{"create", &change.Event{Op: change.OpCreate, After: row, Source: source(change.SnapshotFalse), Transaction: tx, TsMs: 1795251600123}},
		{"update", &change.Event{Op: change.OpUpdate, After: row, Source: source(change.SnapshotFalse), Transaction: tx, TsMs: 1795251600123}},
		{"delete", &change.Event{Op: change.OpDelete, Before: change.Row{"id": int32(1004)}, Source: source(change.SnapshotFalse), Transaction: tx, TsMs: 1795251600123}},
		{"read", &change.Event{Op: change.OpRead, After: row, Source: read, TsMs: 1795251600123}},
		{"replicated", &change.Event{Op: change.OpCreate, After: row, Source: replicated, Transaction: tx, TsMs: 1795251600123}},
		{"truncate", &change.Event{Op: change.OpTruncate, Source: source(change.SnapshotFalse), Transaction: tx, TsMs: 1795251600123}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := ts.EncodeEnvelope(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, fmt.Sprintf("envelope_%s.json", tc.name), string(marshalJSON(t, avroJSON(t, ts, body), "  ")))
		})
	}
}
