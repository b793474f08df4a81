package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestBatchedWritesCommitOnlyWhatTheyWrote runs a Metrics node over 3000
// changes on the real Kafka and Redis three times in one group: stopped
// while it writes, stopped while Redis is cut off (its writes failing), and
// to the end. After each stop, every change below the group's committed
// offsets is in Redis (a stop writes what was handed to the batcher before
// goka commits it; a failed write commits nothing of its batch nor after
// it); at the end every order counts exactly once.
func TestBatchedWritesCommitOnlyWhatTheyWrote(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	const n = 3000
	brokers := testenv.KafkaBrokers(t)
	reg, err := sr.NewClient(sr.URLs(testenv.RegistryURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testRedis(t, "batched")
	run := strings.ReplaceAll(prefix, "-", "_")
	enc := serde.NewEncoder(reg, run)
	table := topologies.TableOf[conformOrder](run, "public", "orders")
	topic := string(table.Topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.DeleteTopics(context.Background(), topic, prefix+".dlq") })
	positions := map[string]string{} // row identity → position of its change
	var records []*kgo.Record
	for i := range n {
		lsn := change.LSN(1000 + i)
		ev := orderChange(change.OpCreate, int64(i), "new", lsn)
		ev.Source.LSN, ev.Transaction = lsn, &change.Transaction{ID: fmt.Sprintf("%d:%d", i, lsn), TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: lsn}
		e, err := enc.Encode(ctx, conformTable, ev)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, &kgo.Record{Topic: topic, Key: e.Key, Value: e.Value})
		positions[fmt.Sprintf("%s|id=%d", topic, i)] = ev.Position.String()
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	byOffset := map[int32]map[int64]string{} // partition → offset → row identity
	for _, r := range records {
		if byOffset[r.Partition] == nil {
			byOffset[r.Partition] = map[int64]string{}
		}
		byOffset[r.Partition][r.Offset] = rowOf(t, ctx, serde.NewDecoder(reg), topic, r.Key)
	}

	proxy := testenv.NewProxy(t, testenv.RedisAddr(t))
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	defer viaProxy.Close()
	group := run + "-metrics"
	topo := topologies.New(prefix, topologies.Metrics(table, conformMeasure))
	start := func(client redis.UniversalClient, logs *testenv.Output) (*Processor, context.CancelFunc, chan error) {
		t.Helper()
		p, err := NewProcessor(topo, Config{Brokers: brokers, Decoder: serde.NewDecoder(reg), Redis: client, KeyPrefix: prefix, Group: group,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(pctx) }()
		return p, stop, done
	}
	waitChanges := func(p *Processor, done chan error, want int64) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); p.Stats().Changes < want; time.Sleep(time.Millisecond) {
			select {
			case err := <-done:
				t.Fatalf("processor stopped: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("the processor handled %d of %d changes in 2 minutes", p.Stats().Changes, want)
			}
		}
	}
	stopped := func(stop context.CancelFunc, done chan error) {
		t.Helper()
		stop()
		if err := <-done; err != nil {
			t.Fatalf("processor stopped with %v; a shutdown is not an error", err)
		}
	}
	// checkCommitted fails unless every change below the committed offsets
	// is in Redis, and returns how many are.
	checkCommitted := func(stage string) int64 {
		t.Helper()
		offsets, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := rdb.HGetAll(ctx, prefix+":"+prefix+":rows").Result()
		if err != nil {
			t.Fatal(err)
		}
		var committed int64
		offsets.Each(func(o kadm.OffsetResponse) {
			for off := int64(0); off < o.At; off++ {
				row := byOffset[o.Partition][off]
				var st struct{ P string }
				if err := json.Unmarshal([]byte(stored[row]), &st); err != nil || st.P < positions[row] {
					t.Fatalf("%s: offset %d of partition %d (row %s) is committed, but Redis holds %q for it", stage, off, o.Partition, row, stored[row])
				}
				committed++
			}
		})
		t.Logf("%s: %d changes committed, %d rows in Redis", stage, committed, len(stored))
		return committed
	}

	var logs testenv.Output
	p, stop, done := start(rdb, &logs)
	waitChanges(p, done, 500)
	stopped(stop, done)
	first := checkCommitted("stopped while writing")

	p, stop, done = start(viaProxy, &logs)
	waitChanges(p, done, 200)
	proxy.Block()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "redis failed; retrying"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no Redis write failed in a minute; the log:\n%s", logs.String())
		}
	}
	stopped(stop, done)
	if second := checkCommitted("stopped while Redis failed"); second >= n || second < first {
		t.Fatalf("%d changes committed after the second run (%d after the first): want fewer than %d, with Redis cut off", second, first, n)
	}

	p, stop, done = start(rdb, &logs)
	defer stopped(stop, done)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		count, err := rdb.HGet(ctx, prefix+":"+prefix+":per_status", "new").Int64()
		if err == nil && count == n {
			break
		}
		if err == nil && count > n {
			t.Fatalf("%d orders counted of %d: a change applied twice", count, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders counted of %d after 2 minutes (%v)", count, n, err)
		}
	}
	if got := checkCommitted("run to the end"); got > n {
		t.Fatalf("%d changes committed of %d", got, n)
	}
}

// rowOf is the row identity of the change whose record key is key.
func rowOf(t *testing.T, ctx context.Context, dec *serde.Decoder, topic string, key []byte) string {
	t.Helper()
	k, err := dec.DecodeKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s|id=%v", topic, k["id"])
}
