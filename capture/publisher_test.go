package capture

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The publisher's tests run on kfake, franz-go's in-process Kafka, which
// implements transactions and read_committed fetches; the integration tests
// hold the whole of capture to the real broker.

const (
	testTopic     = "orders"
	testCkptTopic = "checkpoints"
	testCkptKey   = "cdcflow/slot"
	testTxID      = "cdcflow-capture-test"
	smallTopic    = "small" // takes records of up to 1 KiB
)

// fakeKafka is an in-process Kafka with the topics the tests write.
type fakeKafka struct {
	t       *testing.T
	cluster *kfake.Cluster
	brokers []string
}

func newFakeKafka(t *testing.T) *fakeKafka {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	k := &fakeKafka{t: t, cluster: cluster, brokers: cluster.ListenAddrs()}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if err := ensureCheckpointTopic(ctx, adm, testCkptTopic); err != nil {
		t.Fatal(err)
	}
	small := "1024"
	for topic, cfg := range map[string]map[string]*string{testTopic: nil, smallTopic: {"max.message.bytes": &small}} {
		resp, err := adm.CreateTopic(ctx, 1, 1, cfg, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	return k
}

// publisher returns a publisher on a new transactional producer of id
// testTxID, which fences the producers of that id before it, as a capture
// starting does, and resumes after resume.
func (k *fakeKafka) publisher(maxRecords int, maxDuration time.Duration, resume Checkpoint) *publisher {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.TransactionalID(testTxID), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(cl.Close)
	if _, _, err := cl.ProducerID(context.Background()); err != nil {
		k.t.Fatal(err)
	}
	return newPublisher(cl, testCkptTopic, testCkptKey, maxRecords, maxDuration, resume)
}

// readCommitted reads topic from the start with read_committed isolation,
// handing each record to next until it returns false.
func (k *fakeKafka) readCommitted(topic string, next func(*kgo.Record) bool) {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			k.t.Fatalf("%s: the record awaited did not come within 10s", topic)
		}
		for _, r := range fs.Records() {
			if !next(r) {
				return
			}
		}
	}
}

// committed reads the values of topic up to the record whose value is last,
// and returns those before it. Reading up to a record committed after the
// ones in question tells that no other becomes visible.
func (k *fakeKafka) committed(topic, last string) []string {
	k.t.Helper()
	var values []string
	k.readCommitted(topic, func(r *kgo.Record) bool {
		if string(r.Value) == last {
			return false
		}
		values = append(values, string(r.Value))
		return true
	})
	return values
}

// checkpoints reads the committed checkpoints up to the one at position
// last.
func (k *fakeKafka) checkpoints(last change.Position) []Checkpoint {
	k.t.Helper()
	var out []Checkpoint
	k.readCommitted(testCkptTopic, func(r *kgo.Record) bool {
		var c Checkpoint
		if err := json.Unmarshal(r.Value, &c); err != nil {
			k.t.Fatal(err)
		}
		out = append(out, c)
		return c.Position != last
	})
	return out
}

// produce produces one record of value to topic as the change at pos.
func produce(t *testing.T, p *publisher, pos change.Position, topic, value string) {
	t.Helper()
	if err := p.produce(context.Background(), pos, []serde.Encoded{{Topic: topic, Key: []byte("k"), Value: []byte(value)}}); err != nil {
		t.Fatalf("produce %s at %s: %v", value, pos, err)
	}
}

// endSource ends the source transaction at end and commits the Kafka
// transaction.
func endSource(t *testing.T, p *publisher, end change.LSN) {
	t.Helper()
	if err := p.sourceCommitted(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	if err := p.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func pos(lsn change.LSN, index uint32) change.Position {
	return change.Position{CommitLSN: lsn, Index: index}
}

// TestPublisherBatchesSourceTransactions: source transactions are batched
// into one Kafka transaction until it is due; its checkpoint, in the same
// transaction, confirms the end of the last one.
func TestPublisherBatchesSourceTransactions(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	p := k.publisher(100, time.Hour, Checkpoint{})
	var commits int
	p.committed = func(change.Position) { commits++ }
	for tx := change.LSN(1); tx <= 3; tx++ {
		for i := uint32(1); i <= 2; i++ {
			produce(t, p, pos(tx*100, i), testTopic, fmt.Sprintf("%d.%d", tx, i))
		}
		if err := p.sourceCommitted(ctx, tx*100+10); err != nil {
			t.Fatal(err)
		}
	}
	if !p.open || p.durable != 0 || p.complete != 310 || commits != 0 {
		t.Fatalf("before the transaction is due: open %v, durable %s, complete %s, %d commits; want open, 0/0, 0/136, none",
			p.open, p.durable, p.complete, commits)
	}
	p.maxDuration = 0 // due
	if err := p.maybeCommit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.settle(); err != nil {
		t.Fatal(err)
	}
	if p.open || p.durable != 310 || commits != 1 {
		t.Fatalf("after the commit: open %v, durable %s, %d commits; want closed, 0/136, one", p.open, p.durable, commits)
	}
	produce(t, p, pos(400, 1), testTopic, "end")
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := k.committed(testTopic, "end"), []string{"1.1", "1.2", "2.1", "2.2", "3.1", "3.2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
	want := []Checkpoint{
		{Position: pos(300, 2), Confirm: 310, LastCommit: 310},
		{Position: pos(400, 1), Confirm: 310, LastCommit: 310},
	}
	if got := k.checkpoints(pos(400, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoints %+v, want %+v", got, want)
	}
}

// TestPublisherHoldsRecordsWhileCommitting: a transaction commits in the
// background while capture goes on; the records produced meanwhile wait
// for the next transaction, each checkpoint covers the records of its own
// transaction only, and the slot may be confirmed only once the commit
// ended.
func TestPublisherHoldsRecordsWhileCommitting(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	release := make(chan struct{})
	k.cluster.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.cluster.SleepControl(func() { <-release }) // the first commit only
		return nil, nil, false
	})
	p := k.publisher(2, time.Hour, Checkpoint{Confirm: 90})
	produce(t, p, pos(100, 1), testTopic, "1")
	produce(t, p, pos(100, 2), testTopic, "2") // full: its commit starts
	if p.committing == nil || p.open {
		t.Fatalf("after the transaction filled: committing %v, open %v; want a commit running, none open", p.committing != nil, p.open)
	}
	produce(t, p, pos(100, 3), testTopic, "3")
	if err := p.sourceCommitted(ctx, 110); err != nil {
		t.Fatal(err)
	}
	if len(p.held) != 1 || p.durable != 90 {
		t.Fatalf("while the commit runs: %d records held, durable %s; want 1, 0/5A", len(p.held), p.durable)
	}
	close(release)
	produce(t, p, pos(200, 1), testTopic, "4")
	if err := p.sourceCommitted(ctx, 210); err != nil {
		t.Fatal(err)
	}
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(p.held) != 0 || p.durable != 210 {
		t.Errorf("after the commits ended: %d records held, durable %s; want none, 0/D2", len(p.held), p.durable)
	}
	want := []Checkpoint{
		{Position: pos(100, 2), Confirm: 90},
		{Position: pos(200, 1), Confirm: 110, LastCommit: 110}, // full again
	}
	if got := k.checkpoints(pos(200, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoints %+v, want %+v", got, want)
	}
	produce(t, p, pos(300, 1), testTopic, "end")
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := k.committed(testTopic, "end"), []string{"1", "2", "3", "4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
}

// TestPublisherSplitsLargeSourceTransactions: a source transaction of more
// changes than TransactionRecords spans Kafka transactions; their
// checkpoints point inside it and confirm only what came before it.
func TestPublisherSplitsLargeSourceTransactions(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	resume := Checkpoint{Position: pos(400, 7), Confirm: 410, LastCommit: 410}
	p := k.publisher(2, time.Hour, resume)
	for i := uint32(1); i <= 5; i++ {
		produce(t, p, pos(500, i), testTopic, fmt.Sprint(i))
	}
	if p.durable != 410 {
		t.Errorf("durable %s in the middle of the source transaction, want 0/19A", p.durable)
	}
	endSource(t, p, 510)
	if p.durable != 510 {
		t.Errorf("durable %s after the source transaction is committed, want 0/1FE", p.durable)
	}
	want := []Checkpoint{
		{Position: pos(500, 2), Confirm: 410, LastCommit: 410},
		{Position: pos(500, 4), Confirm: 410, LastCommit: 410},
		{Position: pos(500, 5), Confirm: 510, LastCommit: 510},
	}
	if got := k.checkpoints(pos(500, 5)); !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoints %+v, want %+v", got, want)
	}
	got, err := readTestCheckpoint(ctx, k.brokers)
	if err != nil || !reflect.DeepEqual(got, want[2]) {
		t.Errorf("readCheckpoint = %+v, %v; want %+v", got, err, want[2])
	}
}

// readTestCheckpoint reads the last committed checkpoint of the tests.
func readTestCheckpoint(ctx context.Context, brokers []string) (Checkpoint, error) {
	c, found, err := readCheckpoint(ctx, brokers, nil, testCkptTopic, testCkptKey)
	if err == nil && !found {
		err = fmt.Errorf("no checkpoint")
	}
	return c, err
}

// TestPublisherAbortsWhenAProduceFails: when the broker rejects a record,
// the commit aborts the Kafka transaction: none of its records nor its
// checkpoint becomes visible to read_committed consumers, and the slot is
// not confirmed past what was committed before. A new start publishes the
// changes again from the last committed checkpoint.
func TestPublisherAbortsWhenAProduceFails(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	p := k.publisher(100, time.Hour, Checkpoint{})
	produce(t, p, pos(100, 1), testTopic, "committed")
	endSource(t, p, 110)

	produce(t, p, pos(200, 1), testTopic, "aborted 1")
	big := make([]byte, 4096)
	rand.Read(big) // incompressible: too large for the topic
	produce(t, p, pos(200, 2), smallTopic, string(big))
	produce(t, p, pos(200, 3), testTopic, "aborted 2")
	if err := p.sourceCommitted(ctx, 210); err != nil {
		t.Fatal(err)
	}
	err := p.commit(ctx)
	if err == nil || !strings.Contains(err.Error(), "MESSAGE_TOO_LARGE") {
		t.Fatalf("commit after a rejected record: %v, want the broker's error", err)
	}
	if p.open || p.durable != 110 {
		t.Errorf("after the failed commit: open %v, durable %s; want closed and 0/6E", p.open, p.durable)
	}
	got, err := readTestCheckpoint(ctx, k.brokers)
	if want := (Checkpoint{Position: pos(100, 1), Confirm: 110, LastCommit: 110}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoint after the abort %+v (%v), want %+v", got, err, want)
	}

	// A new start resumes after the committed checkpoint and publishes the
	// aborted changes again.
	p = k.publisher(100, time.Hour, got)
	produce(t, p, pos(200, 1), testTopic, "again 1")
	produce(t, p, pos(200, 3), testTopic, "again 2")
	endSource(t, p, 210)
	produce(t, p, pos(300, 1), testTopic, "end")
	endSource(t, p, 310)
	if got, want := k.committed(testTopic, "end"), []string{"committed", "again 1", "again 2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
}

// TestPublisherCarriesTheResumedCheckpoint: what a start resumed after
// (the last commit read, the snapshot's state) travels on in every
// checkpoint until capture changes it, and ReadCheckpoint reads back what
// was committed.
func TestPublisherCarriesTheResumedCheckpoint(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	resume := Checkpoint{Position: pos(100, 2), Confirm: 90, LastCommit: 120,
		Snapshot: &SnapshotState{Tables: map[string]change.LSN{"public.orders": 50}}}
	if _, found, err := ReadCheckpoint(ctx, k.brokers, testCkptTopic, "cdcflow", "slot"); found || err != nil {
		t.Fatalf("ReadCheckpoint before any commit: found %v, %v", found, err)
	}
	p := k.publisher(100, time.Hour, resume)
	if p.last != resume.Position || p.durable != 90 || p.lastCommit != 120 {
		t.Fatalf("resumed publisher: last %s, durable %s, last commit %s", p.last, p.durable, p.lastCommit)
	}
	produce(t, p, pos(100, 3), testTopic, "next")
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := resume
	want.Position = pos(100, 3)
	got, found, err := ReadCheckpoint(ctx, k.brokers, testCkptTopic, "cdcflow", "slot")
	if err != nil || !found || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadCheckpoint = %+v, %v, %v; want %+v", got, found, err, want)
	}
}
