package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors/searchindex"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// These tests feed the same changes to the topotest harness and to the real
// processors, and check that both end the same: the harness's in-memory
// mirror of the processors' rules is held to the processors themselves.

type conformOrder struct {
	ID         int64
	CustomerID int64
	Status     string
	Amount     *big.Rat
	Note       *string
	CreatedAt  time.Time
}

// conformTable is the table of conformOrder rows, as capture describes it.
var conformTable = &change.Table{Schema: "public", Name: "orders", Columns: []change.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "customer_id", Type: "int8"},
	{Name: "status", Type: "text"},
	{Name: "amount", Type: "numeric", TypeMod: (12<<16 | 2) + 4},
	{Name: "note", Type: "text", Nullable: true},
	{Name: "created_at", Type: "timestamptz", TypeMod: -1},
}}

var conformOrders = topologies.TableOf[conformOrder]("shop", "public", "orders")

// conformEvents is the topic the conform tests' Events nodes write.
var conformEvents = topologies.EventTopicOf("events.Order", conformCreated{}, conformStatusChanged{}, conformDeleted{})

type (
	conformCreated struct {
		OrderID   int64
		Status    string
		Amount    *big.Rat
		Note      *string
		CreatedAt time.Time
	}
	conformStatusChanged struct {
		OrderID  int64
		From, To string
	}
	conformDeleted struct {
		OrderID int64
		Status  string // the kept row's, or the fallback "" of a key-only before image
		Amount  *big.Rat
	}
)

func conformDerive(c topologies.Change[conformOrder]) []topologies.Event {
	switch c.Op {
	case change.OpCreate, change.OpRead:
		o := c.After
		return []topologies.Event{{AggregateID: strconv.FormatInt(o.ID, 10),
			Data: conformCreated{o.ID, o.Status, o.Amount, o.Note, o.CreatedAt}}}
	case change.OpUpdate:
		if c.Before == nil || c.Before.Status == c.After.Status {
			return nil
		}
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.After.ID, 10),
			Data: conformStatusChanged{c.After.ID, c.Before.Status, c.After.Status}}}
	case change.OpDelete:
		return []topologies.Event{{AggregateID: strconv.FormatInt(c.Before.ID, 10),
			Data: conformDeleted{c.Before.ID, c.Before.Status, c.Before.Amount}}}
	}
	return nil
}

func conformMeasure(o conformOrder) []topologies.Sample {
	cents, _ := new(big.Rat).Mul(o.Amount, big.NewRat(100, 1)).Float64()
	return []topologies.Sample{
		{Series: "per_status", Bucket: o.Status, Value: 1},
		{Series: "per_status_recent", Bucket: o.Status, Value: 1, TTL: time.Hour},
		{Series: "revenue_by_customer", Bucket: strconv.FormatInt(o.CustomerID, 10), Value: int64(cents), Ranked: true},
	}
}

// conformScript feeds h a script of changes that exercises every rule
// (snapshot reads sharing a position, updates without a before image,
// transitions, deletes, a row deleted and inserted again, redeliveries, an
// older change, a replay) and hands every record it delivers to deliver, in
// order, tombstones included.
func conformScript(h *topotest.Harness, deliver func(rec topotest.Record)) {
	rows := topotest.Table(h, conformOrders)
	var sent []topotest.Record
	feed := func(rec topotest.Record) {
		sent = append(sent, rec)
		deliver(rec)
		if rec.Event.Op == change.OpDelete {
			deliver(topotest.Record{Topic: rec.Topic, Key: rec.Key}) // the tombstone
		}
	}
	again := func(recs ...topotest.Record) {
		h.Redeliver(recs...)
		for _, rec := range recs {
			deliver(rec)
		}
	}
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	note := "gift"
	order := func(id, customer int64, status string, cents int64) conformOrder {
		return conformOrder{ID: id, CustomerID: customer, Status: status, Amount: big.NewRat(cents, 100), CreatedAt: at}
	}
	o1, o2, o3 := order(1, 7, "new", 1050), order(2, 8, "new", 2000), order(3, 7, "new", 999)
	o3.Note = &note
	read1 := rows.Read(o1, topotest.CommittedAt(at))
	feed(read1)
	feed(rows.Read(o2, topotest.CommittedAt(at)))
	feed(rows.Insert(o3, topotest.CommittedAt(at.Add(time.Second))))
	o1.Status = "paid"
	paid := rows.Update(o1, topotest.CommittedAt(at.Add(2*time.Second)))
	feed(paid)
	o1.Amount = big.NewRat(1100, 100)
	feed(rows.Update(o1))
	again(paid, read1)
	o2.Status = "cancelled"
	feed(rows.Update(o2))
	feed(rows.Delete(conformOrder{ID: 2}))
	feed(rows.Insert(order(2, 9, "new", 500)))
	o3.Status = "shipped"
	// Before the latest position, after o3's last change: applied, since
	// positions are compared per row.
	feed(rows.Update(o3, topotest.At(paid.Event.Position)))
	o3.Status = "lost"
	feed(rows.Update(o3, topotest.At(change.Position{CommitLSN: 2, Index: 1}))) // at o3's insert: older than its last change
	feed(rows.Delete(conformOrder{ID: 1}))
	again(sent...)
}

// gokaInput runs p's goka processor on a goka tester and returns a
// function that writes records to its input as capture would: Avro
// envelopes and keys through the registry, tombstones after deletes.
func gokaInput(t *testing.T, p *Processor, tt *tester.Tester, enc *serde.Encoder) func(topotest.Record) {
	ctx := context.Background()
	producer := runOnTester(t, p, tt)
	return func(rec topotest.Record) {
		t.Helper()
		var e serde.Encoded
		var err error
		if rec.Event == nil {
			e, err = enc.Tombstone(ctx, conformTable, &change.Event{Op: change.OpDelete, Before: rec.Key})
		} else {
			e, err = enc.Encode(ctx, conformTable, rec.Event)
		}
		if err != nil {
			t.Fatalf("encode %+v: %v", rec.Event, err)
		}
		if e.Topic != rec.Topic {
			t.Fatalf("encoded for topic %s, the record is on %s", e.Topic, rec.Topic)
		}
		producer.Emit(e.Topic, string(e.Key), e.Value)
	}
}

// onTester builds a processor of topo on a new goka tester.
func onTester(t *testing.T, topo *topologies.Topology, cfg Config) (*Processor, *tester.Tester) {
	t.Helper()
	tt := tester.New(t)
	cfg.Tester = tt
	p, err := NewProcessor(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, tt
}

// runOnTester runs p on its goka tester until the test ends, and returns a
// producer that writes to the tester's topics once p runs.
func runOnTester(t *testing.T, p *Processor, tt *tester.Tester) goka.Producer {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	for !p.Ready() {
		select {
		case err := <-done:
			t.Fatalf("processor: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	tt.Catchup()
	producer, err := tt.EmitterProducerBuilder()(nil, "capture", nil)
	if err != nil {
		t.Fatal(err)
	}
	return producer
}

func fakeRegistry(t *testing.T) *sr.Client {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestHarnessEventsAgreeWithTheProcessor runs the Events node on goka's
// tester: the events it emits, decoded, are the harness's, one for one.
func TestHarnessEventsAgreeWithTheProcessor(t *testing.T) {
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("conform-events", topologies.Events(conformOrders, conformEvents, conformDerive))
	p, tt := onTester(t, topo, Config{Decoder: dec, Encoder: enc})
	emitted := tt.NewQueueTracker("events.Order")
	h := topotest.New(t, topo)
	conformScript(h, gokaInput(t, p, tt, enc))

	ctx := context.Background()
	want := h.Events()
	if len(want) < 6 {
		t.Fatalf("the harness emitted %d events; the script should make more", len(want))
	}
	// The harness's events, through the same encoder, are what the
	// processor's must decode to.
	own := enc.EventEncoder("events.Order")
	for i := 0; ; i++ {
		key, value, ok := emitted.NextRaw()
		if !ok {
			if i != len(want) {
				t.Fatalf("the processor emitted %d events, the harness %d", i, len(want))
			}
			break
		}
		if i >= len(want) {
			ev, _, _ := dec.DecodeEventRecord(ctx, value)
			t.Fatalf("the processor emitted more events than the harness's %d: %+v", len(want), ev)
		}
		got, gotData, err := dec.DecodeEventRecord(ctx, value)
		if err != nil {
			t.Fatal(err)
		}
		w := want[i]
		mine, err := own.Encode(ctx, &serde.DomainEvent{ID: w.ID, Type: w.Type, AggregateID: w.AggregateID, Position: w.Position, OccurredAt: w.OccurredAt, Data: w.Data})
		if err != nil {
			t.Fatal(err)
		}
		wantEv, wantData, err := dec.DecodeEventRecord(ctx, mine)
		if err != nil {
			t.Fatal(err)
		}
		if key != w.AggregateID || !reflect.DeepEqual(got, wantEv) || !reflect.DeepEqual(gotData, wantData) {
			t.Errorf("event %d: processor %q %+v %v, harness %q %+v %v", i, key, got, gotData, w.AggregateID, wantEv, wantData)
		}
	}
	if got, want := p.Stats(), h.Stats(); got.Changes != want.Changes || got.Duplicates != want.Duplicates {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}

// TestHarnessMetricsAgreeWithRedis runs the Metrics node on goka's tester
// against the real Redis: every series, ranking and TTL ends as the
// harness's.
func TestHarnessMetricsAgreeWithRedis(t *testing.T) {
	rdb, prefix := testRedis(t, "topotest")
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("conform-metrics", topologies.Metrics(conformOrders, conformMeasure))
	p, tt := onTester(t, topo, Config{Decoder: dec, Redis: rdb, KeyPrefix: prefix})
	h := topotest.New(t, topo)
	conformScript(h, gokaInput(t, p, tt, enc))

	ctx := context.Background()
	for _, series := range []string{"per_status", "per_status_recent"} {
		got, err := p.Metrics().Series(ctx, topo.Name, series)
		if err != nil {
			t.Fatal(err)
		}
		if want := h.Series(series); !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("series %s: Redis %v, harness %v", series, got, want)
		}
	}
	z, err := p.Metrics().Ranking(ctx, topo.Name, "revenue_by_customer")
	if err != nil {
		t.Fatal(err)
	}
	var got []topotest.Rank
	for _, m := range z {
		got = append(got, topotest.Rank{Bucket: m.Member.(string), Value: int64(m.Score)})
	}
	if want := h.Ranking("revenue_by_customer"); !reflect.DeepEqual(got, want) || len(want) < 2 {
		t.Errorf("ranking: Redis %v, harness %v", got, want)
	}
	ttl, err := rdb.TTL(ctx, p.Metrics().SeriesKey(topo.Name, "per_status_recent")).Result()
	if err != nil || ttl <= h.TTL("per_status_recent")-time.Minute || ttl > h.TTL("per_status_recent") {
		t.Errorf("TTL: Redis %v (%v), harness %v", ttl, err, h.TTL("per_status_recent"))
	}
	if ttl, _ := rdb.TTL(ctx, p.Metrics().SeriesKey(topo.Name, "per_status")).Result(); ttl != -1 || h.TTL("per_status") != 0 {
		t.Errorf("a series without TTL: Redis %v, harness %v", ttl, h.TTL("per_status"))
	}
	if got, want := p.Stats(), h.Stats(); got.Changes != want.Changes || got.Duplicates != want.Duplicates {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}

// testRedis returns a client of the services' Redis and a key prefix of
// the test's own, whose keys are deleted when the test ends.
func testRedis(t *testing.T, name string) (*redis.Client, string) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// conformDocument is the document of an order; an order whose status is
// "lost" has no id, so its change goes to the dead letters.
func conformDocument(o conformOrder) (string, any) {
	if o.Status == "lost" {
		return "", nil
	}
	return strconv.FormatInt(o.ID, 10), map[string]any{"id": o.ID, "status": o.Status, "amount": o.Amount.FloatString(2)}
}

// TestHarnessIndexAgreesWithElasticsearch runs the Index node on goka's
// tester against the real Elasticsearch: every document, its version and
// the dead letters end as the harness's.
func TestHarnessIndexAgreesWithElasticsearch(t *testing.T) {
	es, index := testIndex(t, "topotest")
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	topo := topologies.New("conform-search", topologies.Index(conformOrders, index, conformDocument))
	p, tt := onTester(t, topo, Config{Decoder: dec, Elasticsearch: es})
	dead := tt.NewQueueTracker(p.cfg.DeadLetterTopic)
	h := topotest.New(t, topo)
	conformScript(h, gokaInput(t, p, tt, enc))

	if docs := h.Documents(index); len(docs) != 2 {
		t.Fatalf("the harness holds %d documents; the script should leave orders 2 and 3", len(docs))
	}
	checkDocuments(t, es, h, index, "1", "2", "3")
	var deadPositions []string
	for {
		headers, _, _, ok := dead.NextRawWithHeaders()
		if !ok {
			break
		}
		deadPositions = append(deadPositions, string(headers[HeaderPosition]))
	}
	var want []string
	for _, d := range h.DeadLetters() {
		want = append(want, d.Record.Event.Position.String())
	}
	if !reflect.DeepEqual(deadPositions, want) || len(want) == 0 {
		t.Errorf("dead letters at %v, the harness's at %v", deadPositions, want)
	}
	if got, want := p.Stats(), h.Stats(); got != (Stats(want)) {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}

// testIndex returns a client of the services' Elasticsearch and an index
// name of the test's own, deleted when the test ends.
func testIndex(t *testing.T, name string) (*elasticsearch.Client, string) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.ESURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	index := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	t.Cleanup(func() {
		if res, err := (esapi.IndicesDeleteRequest{Index: []string{index}}).Do(context.Background(), es); err == nil {
			res.Body.Close()
		}
	})
	return es, index
}

// checkDocuments checks that documents ids of index are in Elasticsearch
// as the harness holds them: there or not, at the same version, with the
// same source.
func checkDocuments(t *testing.T, es *elasticsearch.Client, h *topotest.Harness, index string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		res, err := esapi.GetRequest{Index: index, DocumentID: id}.Do(context.Background(), es)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Found   bool            `json:"found"`
			Version int64           `json:"_version"`
			Source  json.RawMessage `json:"_source"`
		}
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, ok := h.Document(index, id)
		version, _ := searchindex.Version(want.Position)
		if got.Found != ok || ok && (got.Version != version || string(got.Source) != string(want.Source)) {
			t.Errorf("document %s: Elasticsearch found=%v v%d %s; harness found=%v v%d %s", id, got.Found, got.Version, got.Source, ok, version, want.Source)
		}
	}
}

type conformSummary struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Amount string `json:"amount"`
}

// TestHarnessReadModelAgreesWithTheProcessor runs a read model (its root
// table only: the script feeds one table) on goka's tester: every state of
// the read model's table (rows, revision, document) and the counters end as
// the harness's. Its search index is left out: goka's tester refuses a
// topic read with two codecs, and the search index reads the read model's
// table with one of its own.
func TestHarnessReadModelAgreesWithTheProcessor(t *testing.T) {
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	model := topologies.ReadModel[conformSummary]("summary", topologies.Root(conformOrders,
		func(o conformOrder) string { return strconv.FormatInt(o.ID, 10) },
		func(s *conformSummary, o conformOrder) {
			s.ID, s.Status, s.Amount = o.ID, o.Status, o.Amount.FloatString(2)
		}))
	topo := topologies.New("conform-model", model)
	p, tt := onTester(t, topo, Config{Decoder: dec})
	h := topotest.New(t, topo)
	conformScript(h, gokaInput(t, p, tt, enc))

	if docs := topotest.ReadModelDocuments(h, model); len(docs) != 2 {
		t.Fatalf("the harness holds %d documents; the script should leave orders 2 and 3", len(docs))
	}
	table := ReadModelTable(topo.Name, model)
	for _, id := range []string{"1", "2", "3"} {
		st, _ := tt.TableValue(table, id).(*engine.ModelState)
		want, _ := topotest.ReadModelStateOf(h, model, id)
		got := topotest.ReadModelState{}
		if st != nil {
			got = topotest.ReadModelState{Document: st.Document, Version: st.Version, Revision: st.Revision, RootDeleted: st.Root != nil && st.Root.Row == nil}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("state %s: processor %+v, harness %+v", id, got, want)
		}
	}
	if got, want := p.Stats(), h.Stats(); got != (Stats(want)) || want.Duplicates == 0 {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}
}
