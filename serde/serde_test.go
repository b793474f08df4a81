package serde

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func ordersTable() *change.Table {
	return &change.Table{Schema: "public", Name: "orders", Columns: []change.Column{
		{Name: "id", Type: "int8", Key: true},
		{Name: "customer_id", Type: "int4"},
		{Name: "status", Type: "text", Nullable: true},
		{Name: "amount", Type: "numeric", TypeMod: (12<<16 | 2) + 4},
		{Name: "qty", Type: "int2", Nullable: true},
		{Name: "paid", Type: "bool", Nullable: true},
		{Name: "ratio", Type: "numeric", TypeMod: -1, Nullable: true},
		{Name: "created_at", Type: "timestamptz", TypeMod: -1},
		{Name: "placed_local", Type: "timestamp", TypeMod: -1, Nullable: true},
		{Name: "due", Type: "date", Nullable: true},
		{Name: "ref", Type: "uuid", Nullable: true},
		{Name: "meta", Type: "jsonb", Nullable: true},
		{Name: "photo", Type: "bytea", Nullable: true},
		{Name: "weight", Type: "float8", Nullable: true},
	}}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./serde -update to create it)", err)
	}
	if string(want) != got+"\n" {
		t.Fatalf("%s differs from golden file:\ngot:  %s\nwant: %s", name, got, want)
	}
}

func TestSchemasGolden(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	if ts.Topic != "shop.public.orders" {
		t.Fatalf("topic = %q", ts.Topic)
	}
	golden(t, "orders.key.avsc", ts.Key)
	golden(t, "orders.envelope.avsc", ts.Envelope)
}

func TestNoKeyIsAnError(t *testing.T) {
	tbl := &change.Table{Schema: "public", Name: "log", Columns: []change.Column{{Name: "line", Type: "text"}}}
	if _, err := NewTableSchemas("shop", tbl); err == nil {
		t.Fatal("a table without key columns got schemas")
	}
}

// fakeRegistry returns a client of an in-process schema registry that lives
// as long as the test.
func fakeRegistry(t testing.TB) *sr.Client {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestRoundTripThroughRegistry(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)

	created := time.Date(2026, 11, 21, 10, 30, 0, 123456000, time.UTC)
	row := change.Row{
		"id": int64(42), "customer_id": int32(7), "status": "paid",
		"amount": big.NewRat(12345, 100), "qty": int32(3), "paid": true,
		"ratio": big.NewRat(-1, 8), "created_at": created,
		"placed_local": time.Date(2026, 11, 21, 11, 30, 0, 5000, time.UTC),
		"due":          time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"ref":          "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "meta": `{"gift": true}`,
		"photo": []byte{0xde, 0xad}, "weight": 1.5,
	}
	before := change.Row{"id": int64(42), "customer_id": int32(7), "status": nil,
		"amount": big.NewRat(100, 1), "qty": nil, "paid": nil, "ratio": nil, "created_at": created,
		"placed_local": nil, "due": nil, "ref": nil, "meta": nil, "photo": nil, "weight": nil}
	ev := &change.Event{
		Op: change.OpUpdate, Before: before, After: row,
		Source: change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795000000000,
			Snapshot: "false", DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TsUs: 1795000000000000,
			TsNs: 1795000000000000000, Schema: "public", Table: "orders", TxID: 771, LSN: 0x2F00,
			Origin: "pg_16412", OriginLSN: 0x7000},
		Transaction: &change.Transaction{ID: "771:12032", TotalOrder: 2, DataCollectionOrder: 1, CommitLSN: 0x3000},
		TsMs:        1795000000123,
	}
	enc1, err := enc.Encode(ctx, ordersTable(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if enc1.Topic != "shop.public.orders" {
		t.Fatalf("topic = %s", enc1.Topic)
	}
	got, err := dec.DecodeEvent(ctx, enc1.Value)
	if err != nil {
		t.Fatal(err)
	}
	want := *ev
	want.Position = change.Position{CommitLSN: 0x3000, Index: 2}
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip differs:\ngot  %+v\nwant %+v", got, &want)
	}
	key, err := dec.DecodeKey(ctx, enc1.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(key, change.Row{"id": int64(42)}) {
		t.Fatalf("key = %v", key)
	}
	tomb, err := enc.Tombstone(ctx, ordersTable(), &change.Event{Op: change.OpDelete, Before: before})
	if err != nil || tomb.Value != nil || string(tomb.Key) != string(enc1.Key) {
		t.Fatalf("tombstone = %+v, %v", tomb, err)
	}
	if ev, err := dec.DecodeEvent(ctx, nil); ev != nil || err != nil {
		t.Fatalf("tombstone decodes to %v, %v", ev, err)
	}
}

// TestTruncateRoundTrip: a truncate travels as Debezium's, with a null key
// and neither before nor after, and decodes with its position.
func TestTruncateRoundTrip(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)
	ev := &change.Event{
		Op: change.OpTruncate,
		Source: change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795000000000,
			Snapshot: "false", DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TsUs: 1795000000000000,
			TsNs: 1795000000000000000, Schema: "public", Table: "orders", TxID: 771, LSN: 0x2F00},
		Transaction: &change.Transaction{ID: "771:12032", TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: 0x3000},
		TsMs:        1795000000123,
	}
	e, err := enc.Encode(ctx, ordersTable(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if e.Key != nil || e.Value == nil || e.Topic != "shop.public.orders" {
		t.Fatalf("truncate encodes to key %x, value %d bytes, topic %s; want a null key", e.Key, len(e.Value), e.Topic)
	}
	got, err := dec.DecodeEvent(ctx, e.Value)
	if err != nil {
		t.Fatal(err)
	}
	want := *ev
	want.Position = change.Position{CommitLSN: 0x3000, Index: 1}
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip differs:\ngot  %+v\nwant %+v", got, &want)
	}
}

func TestDecodeErrorsNameTheProblem(t *testing.T) {
	client := fakeRegistry(t)
	dec := NewDecoder(client)
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"not wire format", []byte("{\"json\": true}")},
		{"unknown schema id", AppendWire(nil, 999, []byte{0})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := dec.DecodeEvent(context.Background(), tc.value); err == nil {
				t.Fatal("decoded garbage")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestTwosComplement(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, -32768, 1 << 40, -(1 << 40)} {
		b := twosComplement(big.NewInt(n))
		if got := fromTwosComplement(b); got.Int64() != n {
			t.Fatalf("%d -> %x -> %d", n, b, got)
		}
	}
}

// encodeDecode encodes ev with ts and decodes the body as a consumer does,
// with a reader built from the envelope schema alone.
func encodeDecode(t *testing.T, ts *TableSchemas, ev *change.Event) (body []byte, got *change.Event) {
	t.Helper()
	body, err := ts.EncodeEnvelope(ev)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(ts.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = r.decodeEnvelope(body); err != nil {
		t.Fatal(err)
	}
	return body, got
}

// avroJSON returns an envelope body in Avro's JSON encoding, its numbers as
// written.
func avroJSON(t *testing.T, ts *TableSchemas, body []byte) map[string]any {
	t.Helper()
	native, _, err := ts.envCodec.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	text, err := ts.envCodec.TextualFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	var envelope map[string]any
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	if err := d.Decode(&envelope); err != nil {
		t.Fatal(err)
	}
	return envelope
}

func TestKeyOnlyBeforeImageGetsFallbacks(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	_, ev := encodeDecode(t, ts, &change.Event{Op: change.OpDelete, Before: change.Row{"id": int64(9)},
		Source: change.Source{Snapshot: "false"}})
	if ev.Before["id"] != int64(9) || ev.Before["customer_id"] != int32(0) || ev.Before["status"] != nil ||
		ev.Before["amount"].(*big.Rat).Sign() != 0 || !ev.Before["created_at"].(time.Time).Equal(time.Unix(0, 0)) {
		t.Fatalf("before = %v", ev.Before)
	}
}

func TestTransactionRecordsRoundTrip(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)
	for _, rec := range []TransactionRecord{
		{Status: TransactionBegin, ID: "771:11776", TsMs: 1795000000000},
		{Status: TransactionEnd, ID: "771:12400", TsMs: 1795000000000, EventCount: 3,
			DataCollections: []DataCollectionCount{{"public.orders", 2}, {"public.customers", 1}}},
	} {
		e, err := enc.EncodeTransaction(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if e.Topic != "shop.transaction" {
			t.Fatalf("topic %s", e.Topic)
		}
		got, err := dec.DecodeTransaction(ctx, e.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, rec)
		}
		key, err := dec.DecodeKey(ctx, e.Key)
		if err != nil || key["id"] != rec.ID {
			t.Fatalf("key %v, %v", key, err)
		}
	}
}

func TestUnavailableValuesTravelAsThePlaceholder(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(ts.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	after := change.Row{"id": int64(1), "customer_id": int32(2), "amount": big.NewRat(1, 1),
		"created_at": time.Unix(0, 0).UTC(), "status": change.Unavailable{}, "meta": change.Unavailable{},
		"photo": change.Unavailable{}}
	body, err := ts.EncodeEnvelope(&change.Event{Op: change.OpUpdate, After: after, Source: change.Source{Snapshot: "false"}})
	if err != nil {
		t.Fatal(err)
	}
	native, _, _ := ts.envCodec.NativeFromBinary(body)
	value := native.(map[string]any)["after"].(map[string]any)["shop.public.orders.Value"].(map[string]any)
	if value["status"].(map[string]any)["string"] != change.UnavailablePlaceholder {
		t.Fatalf("status travels as %v", value["status"])
	}
	ev, err := r.decodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"status", "meta", "photo"} {
		if ev.After[col] != (change.Unavailable{}) {
			t.Errorf("%s decodes to %#v, want change.Unavailable", col, ev.After[col])
		}
	}
	_, err = ts.EncodeEnvelope(&change.Event{Op: change.OpUpdate, Source: change.Source{Snapshot: "false"},
		After: change.Row{"id": int64(1), "customer_id": change.Unavailable{}, "amount": big.NewRat(1, 1), "created_at": time.Unix(0, 0)}})
	if err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Fatalf("an unavailable integer encodes: %v", err)
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)
	m := &Message{Prefix: "outbox", Content: []byte(`{"type":"OrderCreated"}`), TsMs: 1795000000123,
		Source: change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795000000000, Snapshot: "false",
			DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TxID: 9, LSN: 0x2F00},
		Transaction: &change.Transaction{ID: "9:12032", TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: 0x3000},
		Position:    change.Position{CommitLSN: 0x3000, Index: 1}}
	e, err := enc.EncodeMessage(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if e.Topic != "shop.message" {
		t.Fatalf("topic %s", e.Topic)
	}
	got, err := dec.DecodeMessage(ctx, e.Value)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, m)
	}
}

// TestPositionsFromEnvelopes: a consumer recovers cdcflow's position from
// what capture writes — transaction.commit_lsn and total_order for a change
// of a transaction, source.lsn for a snapshot read or a non-transactional
// message — and records written before commit_lsn existed keep the position
// they had, read from the first LSN of source.sequence.
func TestPositionsFromEnvelopes(t *testing.T) {
	ts, err := NewTableSchemas("shop", ordersTable())
	if err != nil {
		t.Fatal(err)
	}
	row := change.Row{"id": int64(1), "customer_id": int32(2), "amount": big.NewRat(1, 1), "created_at": time.Unix(0, 0).UTC()}
	for _, tc := range []struct {
		name   string
		source change.Source
		tx     *change.Transaction
		want   change.Position
	}{
		{"streamed change", change.Source{Sequence: change.SequenceFor(0x2000, 0x2F00), LSN: 0x2F00},
			&change.Transaction{ID: "7:12032", TotalOrder: 3, CommitLSN: 0x3000}, change.Position{CommitLSN: 0x3000, Index: 3}},
		{"first change after a fresh start", change.Source{Sequence: change.SequenceFor(0, 0x2F00), LSN: 0x2F00},
			&change.Transaction{ID: "7:12032", TotalOrder: 1, CommitLSN: 0x3000}, change.Position{CommitLSN: 0x3000, Index: 1}},
		{"snapshot read", change.Source{Snapshot: change.SnapshotLast, Sequence: change.SequenceFor(0, 0x1000), LSN: 0x1000},
			nil, change.Position{CommitLSN: 0x1000}},
		{"written before commit_lsn", change.Source{Sequence: `["12288","12032"]`, LSN: 0x2F00},
			&change.Transaction{ID: "7:12288", TotalOrder: 2}, change.Position{CommitLSN: 0x3000, Index: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.source.Snapshot = cmp.Or(tc.source.Snapshot, change.SnapshotFalse)
			_, ev := encodeDecode(t, ts, &change.Event{Op: change.OpCreate, After: row, Source: tc.source, Transaction: tc.tx})
			if ev.Position != tc.want {
				t.Errorf("position %v, want %v", ev.Position, tc.want)
			}
		})
	}
}
