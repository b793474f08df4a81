package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

type parcel struct {
	ID     int64
	Status string
}

// ParcelSeen is the event of every parcel change.
type ParcelSeen struct {
	ID     int64
	Status string
}

type parcelView struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// TestProcessorsOverSASLSSL runs capture and a processor binary's runner
// against Kafka's SASL_SSL listener only (SCRAM, TLS verified by the
// services' CA), with the settings a user gives as flags: the metrics reach
// Redis, the read model is served, and /readyz turns 200, all over the
// authenticated, encrypted listener.
func TestProcessorsOverSASLSSL(t *testing.T) {
	registryURL, redisAddr := testenv.RegistryURL(t), testenv.RedisAddr(t)
	kafka := testenv.KafkaSASL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kopts, err := kafka.KgoOpts()
	if err != nil {
		t.Fatal(err)
	}
	src := newCapturedSource(ctx, t, "sasl", kafka.Brokers, kopts, "CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	stem, captureDone := src.stem, src.done
	for i := range 20 {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, $2)", i+1, []string{"new", "sent"}[i%2])
	}

	addr := testenv.FreeAddr(t)
	f := app.Flags{
		Kafka: app.KafkaFlags{Brokers: kafka.Brokers, TLSCA: kafka.TLS.CAFile, SASLMechanism: string(kafka.SASL.Mechanism),
			SASLUser: kafka.SASL.User, SASLPassword: kafka.SASL.Password},
		RegistryURL: registryURL, RedisAddr: redisAddr, RedisPrefix: stem, TopicPrefix: stem, Schema: stem,
		Group: stem, HTTPAddr: addr, RetryTimeout: time.Minute,
	}
	var logs strings.Builder
	runDone := make(chan error, 1)
	go func() { runDone <- app.Run(ctx, f, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)), parcels) }()

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	get := func(path string) (int, string) { return httpGet("http://" + addr + path) }
	deadline := time.Now().Add(90 * time.Second)
	for {
		m, _ := rdb.HGetAll(ctx, stem+":parcels:per_status").Result()
		ready, _ := get("/readyz")
		code, body := get("/read-models/parcel/7")
		if m["new"] == "10" && m["sent"] == "10" && ready == http.StatusOK && code == http.StatusOK && strings.Contains(body, `"status":"new"`) {
			break
		}
		select {
		case err := <-runDone:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("over SASL_SSL: metrics %v, /readyz %d, parcel 7: %d %s", m, ready, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The events, published by the processor's event relay over SASL_SSL
	// too, each once for a read_committed consumer.
	events, err := kgo.NewClient(append(kopts, kgo.ConsumeTopics(parcelEvents(app.Source{Prefix: stem})),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	seen := map[string]int{}
	for n := 0; n < 20 && time.Now().Before(deadline.Add(30*time.Second)); {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		fs := events.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++; n++ })
	}
	if len(seen) != 20 {
		t.Errorf("over SASL_SSL the event topic holds events of %d parcels, want 20: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("parcel %s: %d events, want 1", id, n)
		}
	}
	if strings.Contains(logs.String(), kafka.SASL.Password) {
		t.Error("the log shows the SASL password")
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-captureDone; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// parcels counts parcels per status in Redis and keeps a read model of
// each.
func parcels(src app.Source) *topologies.Topology {
	table := app.Table[parcel](src, "parcels")
	return topologies.New("parcels",
		topologies.Metrics(table, func(p parcel) []topologies.Sample {
			return []topologies.Sample{{Series: "per_status", Bucket: p.Status, Value: 1}}
		}),
		topologies.ReadModel[parcelView]("parcel", topologies.Root(table,
			func(p parcel) string { return fmt.Sprint(p.ID) },
			func(v *parcelView, p parcel) { v.ID, v.Status = p.ID, p.Status })),
		topologies.Events(table, topologies.EventTopicOf(parcelEvents(src), ParcelSeen{}), func(c topologies.Change[parcel]) []topologies.Event {
			if c.After == nil {
				return nil
			}
			return []topologies.Event{{AggregateID: fmt.Sprint(c.After.ID), Data: ParcelSeen{c.After.ID, c.After.Status}}}
		}))
}

// parcelEvents is the event topic of the parcels topology.
func parcelEvents(src app.Source) string { return "events." + src.Prefix + ".Parcel" }

// httpGet returns the status code and body url answers with, 0 when it
// cannot be reached.
func httpGet(url string) (int, string) {
	res, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String returns what was written, when w is a *strings.Builder.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(fmt.Stringer).String()
}

// parcelsIndexed counts parcels per status in Redis and indexes them in
// Elasticsearch's index.
func parcelsIndexed(index string) app.TopologyFunc {
	return func(src app.Source) *topologies.Topology {
		table := app.Table[parcel](src, "parcels")
		return topologies.New("parcels",
			topologies.Metrics(table, func(p parcel) []topologies.Sample {
				return []topologies.Sample{{Series: "per_status", Bucket: p.Status, Value: 1}}
			}),
			topologies.Index(table, index, func(p parcel) (string, any) {
				return fmt.Sprint(p.ID), map[string]any{"id": p.ID, "status": p.Status}
			}))
	}
}
