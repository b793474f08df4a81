package processors

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

type (
	relayedRow struct{ ID int64 }
	RowRelayed struct{ ID int64 }
)

// relayOn returns the relay of an events topology's processor on a fresh
// in-process Kafka, with its table and event topics created, and a client
// of that Kafka.
func relayOn(t *testing.T) (*relay, *kgo.Client) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	table := topologies.TableOf[relayedRow]("shop", "public", "orders")
	topo := topologies.New("relayed", topologies.Events(table, topologies.EventTopicOf("events.Row", RowRelayed{}),
		func(topologies.Change[relayedRow]) []topologies.Event { return nil }))
	p, err := NewProcessor(topo, Config{Brokers: cluster.ListenAddrs(), Decoder: serde.NewDecoder(nil), Encoder: serde.NewEncoder(nil, "shop")})
	if err != nil {
		t.Fatal(err)
	}
	if p.relay == nil {
		t.Fatal("a processor with an Events node on Kafka has no relay")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := kadm.NewClient(cl).CreateTopics(context.Background(), 2, 1, nil, p.relay.table, "events.Row"); err != nil {
		t.Fatal(err)
	}
	return p.relay, cl
}

// state writes a row state of key to the table topic, as goka does.
func state(t *testing.T, cl *kgo.Client, r *relay, key string, lsn change.LSN, ids ...string) {
	t.Helper()
	st := engine.RowState{Position: change.Position{CommitLSN: lsn}}
	for _, id := range ids {
		st.Outbox = append(st.Outbox, engine.OutboxEvent{ID: id, Topic: "events.Row", Key: key, Value: []byte("event " + id)})
	}
	v, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: r.table, Key: []byte(key), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedEvents reads the ids of the events a read_committed consumer
// sees on events.Row within wait.
func committedEvents(t *testing.T, brokers []string, want int, wait time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events.Row"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []string
	deadline := time.Now().Add(wait)
	for len(ids) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(rec *kgo.Record) {
			for _, h := range rec.Headers {
				if h.Key == HeaderEventID {
					ids = append(ids, string(h.Value))
				}
			}
		})
	}
	return ids
}

func TestRelayPublishesEachOutboxOnce(t *testing.T) {
	r, cl := relayOn(t)
	state(t, cl, r, "1", 10, "a", "b")
	state(t, cl, r, "1", 10, "a", "b") // the same state written twice (a producer retry)
	state(t, cl, r, "2", 11)           // a change that derived no event
	state(t, cl, r, "1", 12, "c")
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: r.table, Key: []byte("3")}).FirstErr(); err != nil {
		t.Fatal(err) // a tombstone: no events
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	brokers := r.p.cfg.Brokers
	got := committedEvents(t, brokers, 3, 20*time.Second)
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("read_committed consumer saw events %v, want a,b,c each once, in order", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("relay stopped by its context: %v, want nil", err)
	}

	// A new relay of the same group resumes after the committed offsets.
	state(t, cl, r, "2", 13, "d")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	next := r.p.newRelay()
	go func() { done <- next.run(ctx) }()
	got = committedEvents(t, brokers, 5, 3*time.Second)
	slices.Sort(got) // d is another row's, maybe in another partition
	if strings.Join(got, ",") != "a,b,c,d" {
		t.Errorf("after a restart a read_committed consumer saw events %v, want a,b,c,d", got)
	}
}

func TestRelayStopsOnAnUnreadableState(t *testing.T) {
	r, cl := relayOn(t)
	state(t, cl, r, "1", 10, "a")
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: r.table, Key: []byte("1"), Value: []byte("{not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.run(ctx)
	if !errors.Is(err, engine.ErrState) || !strings.Contains(err.Error(), "aborted") || !strings.Contains(err.Error(), "restart the processor") {
		t.Fatalf("relay returned %v, want an unreadable-state error saying the transaction was aborted and what to do", err)
	}
	if got := committedEvents(t, r.p.cfg.Brokers, 1, 2*time.Second); len(got) > 0 {
		t.Errorf("read_committed consumer saw %v from an aborted transaction", got)
	}
}
