package processors

import (
	"context"
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
	"github.com/lovoo/goka"
)

// conformTruncateScript feeds h orders, a truncate of their table, an
// order inserted after it, a change older than the truncate delivered after
// it (as from another partition), and everything again.
func conformTruncateScript(h *topotest.Harness, deliver func(rec topotest.Record)) {
	rows := topotest.Table(h, conformOrders)
	var sent []topotest.Record
	feed := func(rec topotest.Record) {
		sent = append(sent, rec)
		deliver(rec)
	}
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	order := func(id, customer int64, status string, cents int64) conformOrder {
		return conformOrder{ID: id, CustomerID: customer, Status: status, Amount: big.NewRat(cents, 100), CreatedAt: at}
	}
	o11 := order(11, 7, "new", 700)
	feed(rows.Insert(order(10, 7, "new", 1000), topotest.CommittedAt(at)))
	feed(rows.Insert(o11, topotest.CommittedAt(at)))
	o11.Status = "paid"
	paid := rows.Update(o11, topotest.CommittedAt(at))
	feed(paid)
	feed(rows.Truncate(topotest.CommittedAt(at)))
	feed(rows.Insert(order(12, 8, "new", 1200), topotest.CommittedAt(at)))
	o11.Status = "late" // committed before the truncate, delivered after it
	feed(rows.Update(o11, topotest.At(change.Position{CommitLSN: paid.Event.Position.CommitLSN, Index: 2})))
	h.Redeliver(sent...)
	for _, rec := range sent {
		deliver(rec)
	}
}

// TestTruncateMetricsInRedis: a truncate takes every row of the table out
// of the metrics in the real Redis, ignores a change from before it that
// comes later, and counts a row inserted after it, as the harness does.
func TestTruncateMetricsInRedis(t *testing.T) {
	rdb, prefix := testRedis(t, "truncate")
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("truncate-metrics", topologies.Metrics(conformOrders, conformMeasure))
	p, tt := onTester(t, topo, Config{Decoder: dec, Redis: rdb, KeyPrefix: prefix})
	h := topotest.New(t, topo)
	conformTruncateScript(h, gokaInput(t, p, tt, enc))

	ctx := context.Background()
	got, err := p.Metrics().Series(ctx, topo.Name, "per_status")
	if err != nil {
		t.Fatal(err)
	}
	if want := h.Series("per_status"); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(want, map[string]int64{"new": 1}) {
		t.Errorf("per_status: Redis %v, harness %v; want only the order inserted after the truncate", got, want)
	}
	z, err := p.Metrics().Ranking(ctx, topo.Name, "revenue_by_customer")
	if err != nil || len(z) != 1 || z[0].Member != "8" || z[0].Score != 1200 {
		t.Errorf("revenue_by_customer: %v (%v), want customer 8 with 1200 only", z, err)
	}
	if n, _ := rdb.HLen(ctx, prefix+":"+topo.Name+":rows").Result(); n != 1 {
		t.Errorf("Redis keeps %d rows, want 1", n)
	}
	if got, want := p.Stats(), h.Stats(); got.Changes != want.Changes || got.Duplicates != want.Duplicates || got.DeadLetters != 0 {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}

// TestTruncateIndexInElasticsearch: a truncate deletes the table's
// documents in the real Elasticsearch, at its version, and the index ends
// as the harness's.
func TestTruncateIndexInElasticsearch(t *testing.T) {
	es, index := testIndex(t, "truncate")
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("truncate-search", topologies.Index(conformOrders, index, conformDocument))
	p, tt := onTester(t, topo, Config{Decoder: dec, Elasticsearch: es})
	h := topotest.New(t, topo)
	conformTruncateScript(h, gokaInput(t, p, tt, enc))

	if docs := h.Documents(index); len(docs) != 1 || docs[0].ID != "12" {
		t.Fatalf("the harness holds %+v; want order 12 only", docs)
	}
	checkDocuments(t, es, h, index, "10", "11", "12")
	if got, want := p.Stats(), h.Stats(); got != (Stats(want)) {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}

// TestTruncateEventsAndReadModels: an Events node and a read model do not
// apply a truncate; each sends it to the dead-letter topic with the reason,
// goes on, and ends as the harness does.
func TestTruncateEventsAndReadModels(t *testing.T) {
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	t.Run("events", func(t *testing.T) {
		topo := topologies.New("truncate-events", topologies.Events(conformOrders, conformEvents, conformDerive))
		p, tt := onTester(t, topo, Config{Decoder: dec, Encoder: enc})
		dead := tt.NewQueueTracker(p.cfg.DeadLetterTopic)
		emitted := tt.NewQueueTracker("events.Order")
		h := topotest.New(t, topo)
		conformTruncateScript(h, gokaInput(t, p, tt, enc))
		checkTruncateDeadLetters(t, dead.NextRawWithHeaders, h)
		n := 0
		for _, _, ok := emitted.NextRaw(); ok; _, _, ok = emitted.NextRaw() {
			n++
		}
		if n != len(h.Events()) || n == 0 {
			t.Errorf("the processor emitted %d events, the harness %d", n, len(h.Events()))
		}
		if got, want := p.Stats(), h.Stats(); got.Changes != want.Changes || got.Duplicates != want.Duplicates || got.DeadLetters != 2 {
			t.Errorf("processor stats %+v, harness %+v", got, want)
		}
	})
	t.Run("read model", func(t *testing.T) {
		model := topologies.ReadModel[conformSummary]("summary", topologies.Root(conformOrders,
			func(o conformOrder) string { return strconv.FormatInt(o.ID, 10) },
			func(s *conformSummary, o conformOrder) {
				s.ID, s.Status, s.Amount = o.ID, o.Status, o.Amount.FloatString(2)
			}))
		topo := topologies.New("truncate-model", model)
		p, tt := onTester(t, topo, Config{Decoder: dec})
		dead := tt.NewQueueTracker(p.cfg.DeadLetterTopic)
		h := topotest.New(t, topo)
		conformTruncateScript(h, gokaInput(t, p, tt, enc))
		checkTruncateDeadLetters(t, dead.NextRawWithHeaders, h)
		table := ReadModelTable(topo.Name, model)
		for _, id := range []string{"10", "11", "12"} {
			st, _ := tt.TableValue(table, id).(*engine.ModelState)
			want, _ := topotest.ReadModelStateOf(h, model, id)
			if st == nil || !reflect.DeepEqual(st.Document, want.Document) || st.Revision != want.Revision {
				t.Errorf("state %s: processor %+v, harness %+v", id, st, want)
			}
		}
	})
}

// checkTruncateDeadLetters checks that the truncate, delivered twice, is
// the only dead letter, as the harness's, and says why.
func checkTruncateDeadLetters(t *testing.T, next func() (goka.Headers, string, []byte, bool), h *topotest.Harness) {
	t.Helper()
	var got []string
	for headers, _, _, ok := next(); ok; headers, _, _, ok = next() {
		got = append(got, string(headers[HeaderError]))
	}
	var want []string
	for _, d := range h.DeadLetters() {
		want = append(want, d.Err.Error())
	}
	if !reflect.DeepEqual(got, want) || len(want) != 2 {
		t.Errorf("dead letters %q, the harness's %q; want the truncate, twice", got, want)
	}
}

// TestTruncateWindowsInRedis: a Windowed node does not apply a truncate (a
// window counts the changes committed in it): it dead-letters it with the
// reason, as the harness does, the truncated orders keep counting in their
// window, and an order inserted after the truncate counts too, in the real
// Redis as in the harness.
func TestTruncateWindowsInRedis(t *testing.T) {
	rdb, prefix := testRedis(t, "truncate-windows")
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("truncate-windows", topologies.Windowed(conformOrders, topologies.Tumbling(time.Minute), conformWindowMeasure))
	p, tt := onTester(t, topo, Config{Decoder: dec, Redis: rdb, KeyPrefix: prefix})
	dead := tt.NewQueueTracker(p.cfg.DeadLetterTopic)
	h := topotest.New(t, topo)
	conformTruncateScript(h, gokaInput(t, p, tt, enc))
	checkTruncateDeadLetters(t, dead.NextRawWithHeaders, h)

	got, err := p.Metrics().Windows(context.Background(), topo.Name, "orders", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := h.Windows("orders")
	if len(want) != 1 || want[0].Value != 3 {
		t.Fatalf("the harness's orders windows %+v; want one window counting orders 10, 11 and 12", want)
	}
	if len(got) != 1 || !got[0].Start.Equal(want[0].Start) || got[0].Value != want[0].Value {
		t.Errorf("orders windows: Redis %+v, harness %+v", got, want)
	}
	if got, want := p.Stats(), h.Stats(); got.Changes != want.Changes || got.Duplicates != want.Duplicates || got.DeadLetters != 2 {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}
