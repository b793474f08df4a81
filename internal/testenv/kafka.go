package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadCommitted reads topic from its start with read_committed isolation,
// as a consumer of capture's topics does, until done returns true for a
// record, then on to the end of every partition as it is at that moment
// (its last stable offset): everything committed before the record that
// satisfied done. It returns the records in partition order (control
// records left out) and fails the test after timeout.
func ReadCommitted(t testing.TB, brokers []string, topic string, timeout time.Duration, done func(*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	next := map[int32]int64{} // the next offset of each partition
	var ends map[int32]int64  // nil until done
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records from %s, not all, before timing out after %v", len(out), topic, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			out = append(out, r)
			if ends == nil && done(r) {
				ends = stableOffsets(t, cl, topic)
			}
		})
		if ends == nil {
			continue
		}
		for p, end := range ends {
			if next[p] >= end {
				delete(ends, p)
			}
		}
		if len(ends) == 0 {
			return out
		}
	}
}

// stableOffsets returns the last stable offset of each partition of topic
// that has records.
func stableOffsets(t testing.TB, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	offs, err := kadm.NewClient(cl).ListCommittedOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("stable offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out
}
