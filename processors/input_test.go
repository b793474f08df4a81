package processors

import (
	"context"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// orderChange is a change of conformTable (topic shop.public.orders) at
// position lsn/1.
func orderChange(op change.Op, id int64, status string, lsn change.LSN) *change.Event {
	row := change.Row{"id": id, "customer_id": int64(7), "status": status, "amount": big.NewRat(1050, 100),
		"note": nil, "created_at": time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	ev := &change.Event{Op: op, After: row, Source: change.Source{Schema: "public", Table: "orders", TsMs: 1},
		Position: change.Position{CommitLSN: lsn, Index: 1}}
	if op == change.OpDelete {
		ev.Before, ev.After = change.Row{"id": id}, nil
	}
	return ev
}

// TestMalformedChangesGoToTheDeadLetterTopic feeds an Events node, on goka's
// tester, a record of every kind it cannot read between good changes: each
// goes to the dead-letter topic with its key, value and headers, and the
// good changes still become events.
func TestMalformedChangesGoToTheDeadLetterTopic(t *testing.T) {
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("poison-events", topologies.Events(conformOrders, conformEvents, conformDerive))
	p, tt := onTester(t, topo, Config{Decoder: dec, Encoder: enc})
	events, dead := tt.NewQueueTracker("events.Order"), tt.NewQueueTracker("poison-events.dlq")
	producer := runOnTester(t, p, tt)

	ctx := context.Background()
	encode := func(table *change.Table, ev *change.Event) serde.Encoded {
		t.Helper()
		e, err := enc.Encode(ctx, table, ev)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first, second := encode(conformTable, orderChange(change.OpCreate, 1, "new", 10)), encode(conformTable, orderChange(change.OpCreate, 2, "new", 20))
	customers := &change.Table{Schema: "public", Name: "customers", Columns: []change.Column{{Name: "id", Type: "int8", Key: true}, {Name: "name", Type: "text"}}}
	customer := encode(customers, &change.Event{Op: change.OpCreate, After: change.Row{"id": int64(1), "name": "Ada"},
		Source: change.Source{Schema: "public", Table: "customers"}, Position: change.Position{CommitLSN: 30, Index: 1}})

	producer.Emit(first.Topic, string(first.Key), first.Value)
	for _, tc := range []struct {
		name       string
		key, value []byte
		says       string // in the error header
	}{
		{"random bytes", first.Key, []byte{0xde, 0xad, 0xbe, 0xef, 0x42, 0x17}, "not in Confluent wire format"},
		{"unknown schema id", first.Key, serde.AppendWire(nil, 987654, []byte{2, 4, 6}), "schema id not in the registry"},
		{"truncated Avro", first.Key, second.Value[:len(second.Value)/2], "decode envelope"},
		{"no key", nil, second.Value, "without a key"},
		{"a key that does not decode", []byte("id=2"), second.Value, "decode key"},
		{"another row's key", first.Key, second.Value, "is not the key of the row"},
		{"another table's change", customer.Key, customer.Value, "a change of table public.customers on topic shop.public.orders"},
	} {
		before := p.Stats().DeadLetters
		producer.Emit(first.Topic, string(tc.key), tc.value)
		headers, key, value, ok := dead.NextRawWithHeaders()
		if !ok {
			t.Fatalf("%s: nothing dead-lettered", tc.name)
		}
		if key != string(tc.key) || string(value) != string(tc.value) {
			t.Errorf("%s: dead-lettered another key or value", tc.name)
		}
		if got := string(headers[HeaderError]); !strings.Contains(got, tc.says) {
			t.Errorf("%s: error header %q does not say %q", tc.name, got, tc.says)
		}
		if string(headers[HeaderTopic]) != first.Topic || string(headers[HeaderGroup]) != "poison-events" || headers[HeaderOffset] == nil || headers[HeaderPartition] == nil {
			t.Errorf("%s: headers %q do not say where the record came from", tc.name, headers)
		}
		if got := p.Stats().DeadLetters - before; got != 1 {
			t.Errorf("%s: %d dead letters counted", tc.name, got)
		}
	}
	producer.Emit(second.Topic, string(second.Key), second.Value)
	var created int
	for {
		if _, _, ok := events.NextRaw(); !ok {
			break
		}
		created++
	}
	if created != 2 {
		t.Errorf("the good changes made %d events, want 2", created)
	}
	if _, _, ok := dead.NextRaw(); ok {
		t.Error("a good change was dead-lettered")
	}
}

// TestUnavailableRegistryIsWaitedFor makes the registry answer 503 to its
// first schema lookups: the processor waits, then reads the change; it
// dead-letters nothing.
func TestUnavailableRegistryIsWaitedFor(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc := serde.NewEncoder(reg, "shop")
	rec, err := enc.Encode(context.Background(), conformTable, orderChange(change.OpCreate, 1, "new", 10))
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") && refused.Add(1) <= 3 {
			http.Error(w, `{"error_code":50001,"message":"store unavailable"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	topo := topologies.New("blink-events", topologies.Events(conformOrders, conformEvents, conformDerive))
	p, tt := onTester(t, topo, Config{Decoder: serde.NewDecoder(reg), Encoder: enc})
	events, dead := tt.NewQueueTracker("events.Order"), tt.NewQueueTracker("blink-events.dlq")
	runOnTester(t, p, tt).Emit(rec.Topic, string(rec.Key), rec.Value)
	if _, _, ok := events.NextRaw(); !ok {
		t.Fatal("no event once the registry answered")
	}
	if _, _, ok := dead.NextRaw(); ok || p.Stats().DeadLetters != 0 {
		t.Fatal("a good change was dead-lettered while the registry was unavailable")
	}
	if n := refused.Load(); n < 3 {
		t.Fatalf("the registry was asked %d times, want the 3 refusals and a success", n)
	}
}
