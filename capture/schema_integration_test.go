package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestSchemaChangesWhileStreaming adds, drops and widens columns while
// capture streams: each table version registers a new schema version under
// the registry's BACKWARD compatibility and changes keep flowing, a new NOT
// NULL column with a default too (its Avro default fills old records, as in
// Debezium's schemas); a change the registry rejects (a column retyped from
// bigint to text) goes to the dead-letter topic, and capture goes on.
func TestSchemaChangesWhileStreaming(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, qty int NOT NULL)", f.name))
	topic := serde.Topic(f.prefix, "public", f.name)
	ctx := context.Background()
	if res := f.reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, topic+"-value"); res[0].Err != nil {
		t.Fatalf("set compatibility: %v", res[0].Err)
	}
	c := f.startCapture(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 10)")
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN note text")
	f.exec("INSERT INTO " + f.name + " VALUES (2, 20, 'added')")
	f.exec("ALTER TABLE " + f.name + " ALTER COLUMN qty TYPE bigint")
	f.exec("INSERT INTO " + f.name + " VALUES (3, 30, 'widened')")
	f.exec("ALTER TABLE " + f.name + " DROP COLUMN note")
	f.exec("INSERT INTO " + f.name + " VALUES (4, 40)")
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN region text NOT NULL DEFAULT 'eu'")
	f.exec("INSERT INTO " + f.name + " VALUES (5, 50, 'us')")
	f.exec("ALTER TABLE " + f.name + " ALTER COLUMN qty TYPE text")
	f.exec("INSERT INTO " + f.name + " VALUES (6, 'sixty', 'us')")

	recs := f.consume(topic, 5)
	want := []change.Row{
		{"id": int32(1), "qty": int32(10)},
		{"id": int32(2), "qty": int32(20), "note": "added"},
		{"id": int32(3), "qty": int64(30), "note": "widened"},
		{"id": int32(4), "qty": int64(40)},
		{"id": int32(5), "qty": int64(50), "region": "us"},
	}
	for i, w := range want {
		if got := recs[i].event.After; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("record %d: after = %v, want %v", i, got, w)
		}
	}
	versions, err := f.reg.SubjectVersions(ctx, topic+"-value")
	if err != nil || len(versions) != 5 {
		t.Errorf("subject %s-value has versions %v (%v), want 5", topic, versions, err)
	}

	dead := f.rawRecords(f.prefix+".dlq", 1)
	if len(dead) != 1 || !strings.Contains(string(dead[0].Value), `"qty":"sixty"`) {
		t.Fatalf("dead letters %v, want the row with the rejected schema", dead)
	}
	for _, h := range dead[0].Headers {
		if h.Key == "cdcflow.error" && !strings.Contains(string(h.Value), "schema rejected by the registry") {
			t.Errorf("error header %q does not say the registry rejected the schema", h.Value)
		}
	}
	if st := c.Stats(); st.DeadLettered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestColumnDefaultsAsDebezium captures a table whose columns have defaults:
// the registered schemas carry them as Debezium's do (a literal, a
// function's placeholder, none where Debezium reads none), the snapshot and
// the stream register the same schema, and a key-only before image holds
// each NOT NULL column's default.
func TestColumnDefaultsAsDebezium(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %s (id serial PRIMARY KEY, status text NOT NULL DEFAULT 'new',
		note text DEFAULT 'it''s', qty smallint NOT NULL DEFAULT 3, amount numeric(10,2) NOT NULL DEFAULT 12.5,
		created_at timestamptz NOT NULL DEFAULT now(), label text NOT NULL, blob bytea NOT NULL DEFAULT '\x00')`, f.name))
	f.exec("INSERT INTO " + f.name + " (label) VALUES ('read by the snapshot')")
	f.start(capture.Config{})
	f.exec("INSERT INTO " + f.name + " (label, note) VALUES ('streamed', NULL)")
	f.exec("DELETE FROM " + f.name + " WHERE id = 2")

	topic := serde.Topic(f.prefix, "public", f.name)
	ctx := context.Background()
	dec := serde.NewDecoder(f.reg)
	valueIDs := map[int]bool{}
	var del *change.Event
	var key, value []byte // of a change, not the tombstone
	for _, r := range f.rawRecords(topic, 4) {
		if r.Value == nil {
			continue // the delete's tombstone
		}
		key, value = r.Key, r.Value
		id, _, err := serde.SplitWire(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		valueIDs[id] = true
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Op == change.OpDelete {
			del = ev
		}
	}
	if len(valueIDs) != 1 {
		t.Errorf("the snapshot and the stream registered value schemas %v, want one", valueIDs)
	}
	schemaOf := func(wire []byte) map[string]any {
		id, _, err := serde.SplitWire(wire)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.reg.SchemaByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s.Schema), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	fieldsOf := func(rec map[string]any) map[string]string {
		out := map[string]string{}
		for _, f := range rec["fields"].([]any) {
			b, _ := json.Marshal(f)
			out[f.(map[string]any)["name"].(string)] = string(b)
		}
		return out
	}
	keyFields := fieldsOf(schemaOf(key))
	if keyFields["id"] != `{"default":0,"name":"id","type":{"connect.default":0,"type":"int"}}` {
		t.Errorf("key field id is %s, want Debezium's placeholder default 0 of nextval()", keyFields["id"])
	}
	before := schemaOf(value)["fields"].([]any)[0].(map[string]any)["type"].([]any)[1].(map[string]any)
	fields := fieldsOf(before)
	for col, want := range map[string]string{
		"status":     `{"default":"new","name":"status","type":{"connect.default":"new","type":"string"}}`,
		"note":       `{"default":"it's","name":"note","type":[{"connect.default":"it's","type":"string"},"null"]}`,
		"qty":        `{"default":3,"name":"qty","type":{"connect.default":3,"connect.type":"int16","type":"int"}}`,
		"amount":     `{"default":"\u0004\u00e2","name":"amount","type":{"connect.default":"\u0004\u00e2","connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"connect.decimal.precision":"10","scale":"2"},"connect.version":1,"logicalType":"decimal","precision":10,"scale":2,"type":"bytes"}}`,
		"created_at": `{"default":"1970-01-01T00:00:00.000000Z","name":"created_at","type":{"connect.default":"1970-01-01T00:00:00.000000Z","connect.name":"io.debezium.time.ZonedTimestamp","connect.version":1,"type":"string"}}`,
		"label":      `{"name":"label","type":"string"}`,
		"blob":       `{"name":"blob","type":"bytes"}`, // Debezium reads no bytea default
	} {
		var got, w any
		json.Unmarshal([]byte(fields[col]), &got)
		json.Unmarshal([]byte(want), &w)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("field %s is %s, Debezium's is %s", col, fields[col], want)
		}
	}

	want := change.Row{"id": int32(2), "status": "new", "note": nil, "qty": int32(3), "amount": big.NewRat(25, 2),
		"created_at": time.Unix(0, 0).UTC(), "label": "", "blob": []byte{}}
	if del == nil || fmt.Sprint(del.Before) != fmt.Sprint(want) {
		t.Errorf("delete under REPLICA IDENTITY DEFAULT: %+v, want before = %v", del, want)
	}
}
