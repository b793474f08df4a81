package serde

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// envelopeNative is an envelope in goavro's native form: what EncodeEnvelope
// writes must be what goavro writes from it with the envelope's codec.
func envelopeNative(t *testing.T, ts *TableSchemas, ev *change.Event) map[string]any {
	t.Helper()
	native := map[string]any{
		"op":    ev.Op.String(),
		"ts_ms": goavro.Union("long", ev.TsMs), "ts_us": goavro.Union("long", ev.TsMs*1000), "ts_ns": goavro.Union("long", ev.TsMs*1_000_000),
		"source": sourceNative(ev.Source), "transaction": transactionNative(ev.Transaction),
		"before": nil, "after": nil,
	}
	for name, row := range map[string]change.Row{"before": ev.Before, "after": ev.After} {
		if row == nil {
			continue
		}
		r, err := ts.value.encode(row)
		if err != nil {
			t.Fatal(err)
		}
		native[name] = goavro.Union(ts.value.fullName, r)
	}
	return native
}

// TestEnvelopeEncodingIsGoavros: the envelope EncodeEnvelope writes itself
// is byte for byte the one goavro writes with the registered envelope
// schema, for every shape of its optional parts.
func TestEnvelopeEncodingIsGoavros(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 21, 10, 30, 0, 123456000, time.UTC)
	row := change.Row{"id": int64(42), "customer_id": int32(7), "status": "paid", "amount": big.NewRat(12345, 100),
		"created_at": created, "weight": -1.5, "photo": []byte{0xde, 0xad}}
	source := change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795000000000,
		Snapshot: "false", DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TsUs: 1795000000000000,
		TsNs: 1795000000000000000, Schema: "public", Table: "orders", TxID: 771, LSN: 0x2F00}
	withOrigin := source
	withOrigin.Origin, withOrigin.OriginLSN, withOrigin.Snapshot = "pg_16412", 0x7000, "last_in_data_collection"
	tx := &change.Transaction{ID: "771:12032", TotalOrder: 2, DataCollectionOrder: 1, CommitLSN: 0x3000}
	for _, tc := range []struct {
		name string
		ev   change.Event
	}{
		{"create", change.Event{Op: change.OpCreate, After: row, Source: source, TsMs: 1795000000123}},
		{"update with a transaction", change.Event{Op: change.OpUpdate, Before: row, After: row, Source: source, Transaction: tx, TsMs: 1}},
		{"delete with an origin", change.Event{Op: change.OpDelete, Before: row, Source: withOrigin, TsMs: 1795000000123}},
		{"transaction without commit LSN", change.Event{Op: change.OpRead, After: row, Source: source,
			Transaction: &change.Transaction{ID: "1:2"}, TsMs: -7}},
		{"zero source", change.Event{Op: change.OpCreate, After: row}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ts.EncodeEnvelope(&tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ts.envCodec.BinaryFromNative(nil, envelopeNative(t, ts, &tc.ev))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("EncodeEnvelope wrote\n%x\ngoavro writes\n%x", got, want)
			}
		})
	}
}

// TestTransactionEncodingIsGoavros: the transaction-metadata records
// EncodeTransaction writes itself are byte for byte those goavro writes
// with their schemas.
func TestTransactionEncodingIsGoavros(t *testing.T) {
	enc := NewEncoder(fakeRegistry(t), "shop")
	schemas, err := transactionSchemas()
	if err != nil {
		t.Fatal(err)
	}
	var codecs [2]*goavro.Codec
	for i, s := range schemas {
		if codecs[i], err = goavro.NewCodec(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range []TransactionRecord{
		{Status: TransactionBegin, ID: "771:12032", TsMs: 1795000000123},
		{Status: TransactionEnd, ID: "771:12040", TsMs: 1795000000124, EventCount: 3,
			DataCollections: []DataCollectionCount{{"public.orders", 2}, {"public.items", 1}}},
		{Status: TransactionEnd, ID: "772:1", TsMs: -1},
	} {
		t.Run(string(rec.Status)+" "+rec.ID, func(t *testing.T) {
			got, err := enc.EncodeTransaction(t.Context(), rec)
			if err != nil {
				t.Fatal(err)
			}
			value := map[string]any{"status": string(rec.Status), "id": rec.ID, "ts_ms": rec.TsMs,
				"event_count": nil, "data_collections": nil}
			if rec.Status == TransactionEnd {
				value["event_count"] = goavro.Union("long", rec.EventCount)
				dcs := make([]any, len(rec.DataCollections))
				for i, dc := range rec.DataCollections {
					dcs[i] = goavro.Union(dataCollectionName, map[string]any{"data_collection": dc.DataCollection, "event_count": dc.EventCount})
				}
				value["data_collections"] = goavro.Union("array", dcs)
			}
			for i, native := range []map[string]any{{"id": rec.ID}, value} {
				want, err := codecs[i].BinaryFromNative(nil, native)
				if err != nil {
					t.Fatal(err)
				}
				_, body, err := SplitWire([][]byte{got.Key, got.Value}[i])
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(body, want) {
					t.Errorf("%s: EncodeTransaction wrote\n%x\ngoavro writes\n%x", []string{"key", "value"}[i], body, want)
				}
			}
		})
	}
}

// BenchmarkEncodeTransaction encodes the END record of a transaction of
// one table.
func BenchmarkEncodeTransaction(b *testing.B) {
	enc := NewEncoder(fakeRegistry(b), "bench")
	rec := TransactionRecord{Status: TransactionEnd, ID: "771:12040", TsMs: 1795000000124, EventCount: 1,
		DataCollections: []DataCollectionCount{{"public.orders", 1}}}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.EncodeTransaction(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode encodes a change of a table of the shape of
// BenchmarkLargeTransaction's, key and envelope, as capture does per row.
func BenchmarkEncode(b *testing.B) {
	client := fakeRegistry(b)
	enc := NewEncoder(client, "bench")
	tbl := &change.Table{Schema: "public", Name: "bigtx", Columns: []change.Column{
		{Name: "id", Type: "int4", Key: true},
		{Name: "customer", Type: "int4"},
		{Name: "amount", Type: "numeric", TypeMod: (12<<16 | 2) + 4},
		{Name: "note", Type: "text", Nullable: true},
	}}
	ev := &change.Event{Op: change.OpCreate,
		After: change.Row{"id": int32(1234567), "customer": int32(567), "amount": big.NewRat(4567, 100), "note": "fcea920f7412b5da7be0cf42b8c93759"},
		Source: change.Source{Version: "0.1.0", Connector: "postgresql", Name: "bench", TsMs: 1795000000000,
			Snapshot: "false", DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TsUs: 1795000000000000,
			TsNs: 1795000000000000000, Schema: "public", Table: "bigtx", TxID: 771, LSN: 0x2F00},
		TsMs: 1795000000123}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(ctx, tbl, ev); err != nil {
			b.Fatal(err)
		}
	}
}
