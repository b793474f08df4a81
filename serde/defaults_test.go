package serde

import (
	"context"
	"encoding/json"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// defaultsTable has NOT NULL and nullable columns with the defaults capture
// reads as Debezium's PostgresDefaultValueConverter does: literals, and for
// a function (nextval, now()) the type's placeholder.
func defaultsTable() *change.Table {
	return &change.Table{Schema: "public", Name: "accounts", Columns: []change.Column{
		{Name: "id", Type: "int4", TypeMod: -1, Key: true, Default: int32(0)}, // serial: nextval(...)
		{Name: "status", Type: "text", TypeMod: -1, Default: "new"},           // NOT NULL DEFAULT 'new'
		{Name: "note", Type: "text", TypeMod: -1, Nullable: true, Default: "x"},
		{Name: "level", Type: "int2", TypeMod: -1, Default: int32(3)},
		{Name: "active", Type: "bool", TypeMod: -1, Default: true},
		{Name: "credit", Type: "numeric", TypeMod: numericMod(10, 2), Default: big.NewRat(1250, 100)},
		{Name: "discount", Type: "numeric", TypeMod: numericMod(5, 2), Nullable: true, Default: big.NewRat(-1, 100)},
		{Name: "ratio", Type: "numeric", TypeMod: -1, Default: big.NewRat(1, 2)}, // a VariableScaleDecimal: no default
		{Name: "opened", Type: "date", TypeMod: -1, Default: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "created_at", Type: "timestamptz", TypeMod: -1, Default: time.Unix(0, 0).UTC()}, // now()
		{Name: "ref", Type: "uuid", TypeMod: -1, Default: "00000000-0000-0000-0000-000000000000"},
		{Name: "label", Type: "text", TypeMod: -1}, // NOT NULL, no default
	}}
}

// TestColumnDefaultsInSchemas: a column's default is the field's Avro
// default and the type's connect.default, as Confluent's AvroData writes a
// Debezium schema with a default value; a nullable column with a default is
// [T, "null"]. Key fields carry defaults too (Debezium builds the key from
// the same columns).
func TestColumnDefaultsInSchemas(t *testing.T) {
	ts, err := NewTableSchemas("shop", defaultsTable())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "defaults.key.avsc", indentJSON(t, ts.Key))
	golden(t, "defaults.envelope.avsc", indentJSON(t, ts.Envelope))
	value := recordIn(field(parseSchema(t, ts.Envelope), "before"))
	for _, tc := range []struct {
		column string
		want   string // the field as AvroData writes it
	}{
		{"status", `{"default":"new","name":"status","type":{"connect.default":"new","type":"string"}}`},
		{"note", `{"default":"x","name":"note","type":[{"connect.default":"x","type":"string"},"null"]}`},
		{"level", `{"default":3,"name":"level","type":{"connect.default":3,"connect.type":"int16","type":"int"}}`},
		{"active", `{"default":true,"name":"active","type":{"connect.default":true,"type":"boolean"}}`},
		{"opened", `{"default":18262,"name":"opened","type":{"connect.default":18262,"connect.name":"io.debezium.time.Date","connect.version":1,"type":"int"}}`},
		{"created_at", `{"default":"1970-01-01T00:00:00.000000Z","name":"created_at","type":{"connect.default":"1970-01-01T00:00:00.000000Z","connect.name":"io.debezium.time.ZonedTimestamp","connect.version":1,"type":"string"}}`},
		{"label", `{"name":"label","type":"string"}`},
	} {
		t.Run(tc.column, func(t *testing.T) {
			var got any
			for _, f := range value["fields"].([]any) {
				if f.(map[string]any)["name"] == tc.column {
					got = f
				}
			}
			if b, _ := json.Marshal(got); string(b) != tc.want {
				t.Errorf("field is\n %s\nDebezium's is\n %s", b, tc.want)
			}
		})
	}
	key := parseSchema(t, ts.Key)["fields"].([]any)[0]
	if b, _ := json.Marshal(key); string(b) != `{"default":0,"name":"id","type":{"connect.default":0,"type":"int"}}` {
		t.Errorf("key field id is %s, want the serial's default 0", b)
	}
	if _, ok := field(value, "ratio").(map[string]any)["connect.default"]; ok {
		t.Error("a VariableScaleDecimal (a record) has a default; Debezium gives it none")
	}
}

// TestKeyOnlyBeforeImageGetsDefaults: a delete under REPLICA IDENTITY
// DEFAULT carries the key only; a NOT NULL column then holds its default,
// or the type's fallback when it has none, and a nullable one null — the
// values Debezium's convertValue writes. Through a registry, as a consumer
// reads them.
func TestKeyOnlyBeforeImageGetsDefaults(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)
	e, err := enc.Encode(ctx, defaultsTable(), &change.Event{Op: change.OpDelete, Before: change.Row{"id": int32(9)},
		Source: change.Source{Snapshot: change.SnapshotFalse}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dec.DecodeEvent(ctx, e.Value)
	if err != nil {
		t.Fatal(err)
	}
	want := change.Row{"id": int32(9), "status": "new", "note": nil, "level": int32(3), "active": true,
		"credit": big.NewRat(1250, 100), "discount": nil, "ratio": new(big.Rat), "opened": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		"created_at": time.Unix(0, 0).UTC(), "ref": "00000000-0000-0000-0000-000000000000", "label": ""}
	if len(ev.Before) != len(want) {
		t.Errorf("before = %v\nwant     %v", ev.Before, want)
	}
	for col, w := range want {
		g := ev.Before[col]
		if wr, ok := w.(*big.Rat); ok {
			if gr, ok := g.(*big.Rat); !ok || gr.Cmp(wr) != 0 {
				t.Errorf("column %s = %v, want %v", col, g, w)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("column %s = %#v, want %#v", col, g, w)
		}
	}
}

// TestDefaultsUnderDecimalModes: a numeric default follows the column's
// type under decimal.handling.mode double and string.
func TestDefaultsUnderDecimalModes(t *testing.T) {
	for _, tc := range []struct {
		mode DecimalMode
		want string
	}{
		{DecimalDouble, `{"default":12.5,"name":"credit","type":{"connect.default":12.5,"type":"double"}}`},
		{DecimalString, `{"default":"12.50","name":"credit","type":{"connect.default":"12.50","type":"string"}}`},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ts, err := NewTableSchemas("shop", defaultsTable(), DecimalHandling(tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range recordIn(field(parseSchema(t, ts.Envelope), "before"))["fields"].([]any) {
				if f.(map[string]any)["name"] == "credit" {
					if b, _ := json.Marshal(f); string(b) != tc.want {
						t.Errorf("credit is %s, want %s", b, tc.want)
					}
				}
			}
		})
	}
}
