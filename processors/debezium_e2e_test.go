package processors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/recorded"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// dbzOrder is an order row of the recorded PostgreSQL and MariaDB tables.
type dbzOrder struct {
	ID     int64
	Status string
	Amount *big.Rat
}

// dbzPlainOrder reads the same rows from JSON without schemas, where a
// decimal is the base64 text of its unscaled bytes: it leaves the amount
// out.
type dbzPlainOrder struct {
	ID     int64
	Status string
}

// dbzDocument is an order document of the recorded MongoDB collection.
type dbzDocument struct {
	ID     int64 `cdc:"_id"`
	Status string
	Amount *big.Rat
}

func measureOrders(series string) func(dbzOrder) []topologies.Sample {
	return func(o dbzOrder) []topologies.Sample {
		cents, _ := new(big.Rat).Mul(o.Amount, big.NewRat(100, 1)).Float64()
		return []topologies.Sample{{Series: series + "_count", Bucket: o.Status, Value: 1}, {Series: series + "_cents", Bucket: o.Status, Value: int64(cents)}}
	}
}

// TestDebeziumTopicsIntoRedis produces what Debezium's PostgreSQL, MariaDB
// and MongoDB connectors recorded — each as Avro (the recorded schemas
// registered in the real registry), JSON with schemas and JSON without — to
// nine topics of the real Kafka, between records no connector writes, and
// runs one processor whose Metrics nodes read them into the real Redis:
// every series is the sum over the tables' final rows; the MongoDB update
// that lost its document and every record of an unknown format go to the
// dead-letter topic with a reason naming the problem and its fix. Producing
// every record again changes no series: each is counted a duplicate.
func TestDebeziumTopicsIntoRedis(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	reg, err := sr.NewClient(sr.URLs(testenv.RegistryURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	run := fmt.Sprintf("dbz%d", time.Now().UnixNano())
	keyPrefix := run
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), keyPrefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})

	// The topic of each source and form: <run>-<source>-<form>.<db>.orders,
	// named as Debezium names it after its prefix.
	topicOf := func(source, form string) string {
		db := map[string]string{"postgres": "dbzrec", "mariadb": "inventory", "mongodb": "inventory"}[source]
		return fmt.Sprintf("%s-%s-%s.%s.orders", run, source, strings.ReplaceAll(form, "_", "-"), db)
	}
	var nodes []topologies.Node
	for _, source := range recorded.Sources {
		for _, form := range recorded.Forms {
			topic, series := topicOf(source, form), source+"_"+form
			switch {
			case source == "mongodb":
				nodes = append(nodes, topologies.Metrics(topologies.DebeziumTable[dbzDocument](topic), func(d dbzDocument) []topologies.Sample {
					return measureOrders(series)(dbzOrder{ID: d.ID, Status: d.Status, Amount: d.Amount})
				}))
			case form == recorded.Schemaless:
				nodes = append(nodes, topologies.Metrics(topologies.DebeziumTable[dbzPlainOrder](topic), func(o dbzPlainOrder) []topologies.Sample {
					return []topologies.Sample{{Series: series + "_count", Bucket: o.Status, Value: 1}}
				}))
			default:
				nodes = append(nodes, topologies.Metrics(topologies.DebeziumTable[dbzOrder](topic), measureOrders(series)))
			}
		}
	}
	topo := topologies.New(run, nodes...)

	// The records of the orders topics, in each form, and the records no
	// Debezium connector writes.
	var records []*kgo.Record
	var want processors.Stats
	for _, source := range recorded.Sources {
		recs, err := recorded.Load(source)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range recorded.Forms {
			topic := topicOf(source, form)
			for _, r := range recs {
				if !strings.HasSuffix(r.Topic, ".orders") {
					continue
				}
				key, value, err := r.Bytes(ctx, reg, topic, form)
				if err != nil {
					t.Fatal(err)
				}
				records = append(records, &kgo.Record{Topic: topic, Key: key, Value: value})
				switch {
				case value == nil: // a tombstone
				case lostDocument(t, r):
					want.DeadLetters++
				default:
					want.Changes++
				}
			}
		}
	}
	first := records[0]
	poison := []struct {
		kind, says string
		value      []byte
	}{
		{"Protobuf", "neither Avro in the Confluent wire format (magic byte 0) nor JSON", []byte{0x0a, 0x03, 'a', 'b', 'c'}},
		{"a JSON array", "neither Avro in the Confluent wire format (magic byte 0) nor JSON", []byte(`[1,2]`)},
		{"transaction metadata", "not a change envelope", []byte(`{"status":"BEGIN","id":"0-1-8","event_count":null,"data_collections":null,"ts_ms":1796187875000}`)},
		{"an unknown connector", `connector "sqlserver": cdcflow orders the changes of Debezium's mysql, mariadb, mongodb and postgresql connectors only`,
			[]byte(`{"before":null,"after":{"id":1,"status":"new"},"source":{"connector":"sqlserver","db":"dbzrec","table":"orders"},"op":"c"}`)},
		{"broken JSON", "parse JSON", []byte(`{"before":`)},
	}
	for _, p := range poison {
		records = append(records, &kgo.Record{Topic: first.Topic, Key: first.Key, Value: p.value})
		want.DeadLetters++
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var topics []string
	for _, r := range records {
		if !slices.Contains(topics, r.Topic) {
			topics = append(topics, r.Topic)
		}
	}
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.DeleteTopics(context.Background(), append(topics, run+".dlq")...) })
	produce := func() {
		t.Helper()
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce()

	p, err := processors.NewProcessor(topo, processors.Config{Brokers: brokers, Decoder: serde.NewDecoder(reg), Redis: rdb, KeyPrefix: keyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitStats := func(want processors.Stats) {
		t.Helper()
		for p.Stats().Changes < want.Changes || p.Stats().DeadLetters < want.DeadLetters {
			select {
			case err := <-done:
				t.Fatalf("the processor stopped: %v", err)
			case <-ctx.Done():
				t.Fatalf("stats %+v, want %+v", p.Stats(), want)
			case <-time.After(200 * time.Millisecond):
			}
		}
		if got := p.Stats(); got != want {
			t.Fatalf("stats %+v, want %+v", got, want)
		}
	}
	waitStats(want)

	// Each source's final rows: PostgreSQL orders 1 shipped 10.50, 2 paid
	// 89.99, 4, 5, 6 and 8 new (3, 7 deleted; 7 became 8); MariaDB 1 and 5
	// shipped, 2 paid, 4, 6, 7 new (3 deleted); MongoDB 1 shipped, 2 paid, 4
	// new (3, 5 deleted).
	final := map[string]map[string]int64{
		"postgres_count": {"shipped": 1, "paid": 1, "new": 4}, "postgres_cents": {"shipped": 1050, "paid": 8999, "new": 2500 + 100 + 200 + 300},
		"mariadb_count": {"shipped": 2, "paid": 1, "new": 3}, "mariadb_cents": {"shipped": 1050 + 100, "paid": 8999, "new": 2500 + 200 + 300},
		"mongodb_count": {"shipped": 1, "paid": 1, "new": 1}, "mongodb_cents": {"shipped": 1050, "paid": 8999, "new": 2500},
	}
	check := func(when string) {
		t.Helper()
		for _, source := range recorded.Sources {
			for _, form := range recorded.Forms {
				for _, measure := range []string{"count", "cents"} {
					if measure == "cents" && form == recorded.Schemaless && source != "mongodb" {
						continue
					}
					got, err := p.Metrics().Series(ctx, topo.Name, source+"_"+form+"_"+measure)
					if err != nil {
						t.Fatal(err)
					}
					for status, n := range got { // a status whose rows all left stays at 0
						if n == 0 {
							delete(got, status)
						}
					}
					if want := final[source+"_"+measure]; !maps.Equal(got, want) {
						t.Errorf("%s: series %s_%s_%s is %v, want %v", when, source, form, measure, got, want)
					}
				}
			}
		}
	}
	check("after the first delivery")

	var n int64
	dead := testenv.ReadCommitted(t, brokers, run+".dlq", time.Minute, func(*kgo.Record) bool { n++; return n == want.DeadLetters })
	if len(dead) != int(want.DeadLetters) {
		t.Errorf("%d records dead-lettered, want %d", len(dead), want.DeadLetters)
	}
	reasons := map[string]string{} // by poison kind, or by topic
	for _, r := range dead {
		var reason, from string
		for _, h := range r.Headers {
			switch h.Key {
			case processors.HeaderError:
				reason = string(h.Value)
			case processors.HeaderTopic:
				from = string(h.Value)
			}
		}
		kind := "mongodb update " + from
		for _, p := range poison {
			if string(p.value) == string(r.Value) {
				kind = p.kind
			}
		}
		reasons[kind] = reason
	}
	for _, p := range poison {
		if !strings.Contains(reasons[p.kind], p.says) {
			t.Errorf("%s: dead-lettered with reason %q, want it to say %q", p.kind, reasons[p.kind], p.says)
		}
	}
	for _, form := range recorded.Forms {
		reason := reasons["mongodb update "+topicOf("mongodb", form)]
		if !strings.Contains(reason, "a MongoDB update without the document: set the connector's capture.mode to change_streams_update_full") {
			t.Errorf("the MongoDB update without its document, as %s, dead-lettered with reason %q", form, reason)
		}
	}

	// Idempotence: every record again.
	produce()
	again := want
	again.Changes *= 2
	again.DeadLetters *= 2
	again.Duplicates = want.Changes
	waitStats(again)
	check("after every record was delivered again")
	t.Logf("first delivery %+v, after every record again %+v", want, p.Stats())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// lostDocument reports the recorded MongoDB update whose document was
// deleted before the connector looked it up.
func lostDocument(t *testing.T, r recorded.Record) bool {
	var v struct {
		Op     string          `json:"op"`
		After  json.RawMessage `json:"after"`
		Source struct {
			Connector string `json:"connector"`
		} `json:"source"`
	}
	if err := json.Unmarshal(r.Value.Schemaless, &v); err != nil {
		t.Fatal(err)
	}
	return v.Source.Connector == "mongodb" && v.Op == "u" && string(v.After) == "null"
}
