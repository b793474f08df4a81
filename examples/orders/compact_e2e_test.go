package orders_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestMarkersCompactedAfterRetention runs capture, the summaries (with their
// search index), the order events and the customer-ltv projection with a
// marker retention of 3s over a workload that deletes an order and its line
// item. Once the retention has passed, the processors' sweeps drop the
// markers: the read model's tables (both stages, as a view reads them from
// Kafka) no longer hold the deleted order or its item, the projection's
// value of the customer no longer names the deleted order, and every sink
// still equals SQL.
func TestMarkersCompactedAfterRetention(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "compact", 0)
	s := c.stem
	p := newPipeline(t, c, c.reg)
	const retention = 3 * time.Second
	p.start(ctx, t, eventsProc, orders.Events(s, s, p.eventTopic), processors.Config{Encoder: serde.NewEncoder(p.reg, s)})
	p.start(ctx, t, summariesProc, orders.Summaries(s, s, p.index), processors.Config{Elasticsearch: p.es, MarkerRetention: retention})
	p.waitFor(t, "the event topic", func() bool { return topicExists(ctx, t, p.c.brokers, p.eventTopic) })
	p.start(ctx, t, projectionsProc, orders.Projections(p.eventTopic), processors.Config{MarkerRetention: retention})
	defer p.stopAll(t)

	c.exec(ctx, t, "INSERT INTO "+s+".customers VALUES (1, 'Ada', 'retail')")
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount) VALUES (1, 1, 10.00), (2, 1, 20.00)")
	c.exec(ctx, t, "INSERT INTO "+s+".order_items VALUES (1, 1, 'pen', 3, 1.50), (2, 2, 'ink', 1, 4.99)")
	c.exec(ctx, t, "DELETE FROM "+s+".order_items WHERE id = 1")
	c.exec(ctx, t, "DELETE FROM "+s+".orders WHERE id = 1")

	want := sqlSummaries(ctx, t, c)
	if len(want) != 1 {
		t.Fatalf("the workload left %d summaries, want 1", len(want))
	}
	modelTable, joinTable := p.modelTable(), processors.JoinTable(s+"-"+summariesProc, p.summary)
	ltvTable := processors.ProjectionTable(s+"-"+projectionsProc, p.ltv)
	p.waitFor(t, "the summaries' markers to be compacted", func() bool {
		model := readTable(ctx, t, c.brokers, modelTable)
		_, kept := model["1"]
		return !kept && reflect.DeepEqual(summariesOf(t, p.summary, model), want)
	})
	p.waitFor(t, "the join stage's markers to be compacted", func() bool {
		for key := range readTable(ctx, t, c.brokers, joinTable) {
			if strings.HasSuffix(key, "/1") && !strings.Contains(key, "customers") {
				return false
			}
		}
		return true
	})
	p.waitFor(t, "the projection's entry of the deleted order to be compacted", func() bool {
		var v struct {
			Applied map[string]json.RawMessage `json:"applied"`
		}
		raw, ok := readTable(ctx, t, c.brokers, ltvTable)["1"]
		if !ok {
			return false
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		_, kept := v.Applied["1"]
		_, live := v.Applied["2"]
		return !kept && live
	})
	if st := p.stats(summariesProc); st.Compacted < 3 || st.DeadLetters != 0 {
		t.Fatalf("summaries: stats %+v; want 3 keys compacted (the order's model state, the join stage's order and item)", st)
	}
	if st := p.stats(projectionsProc); st.Compacted != 1 || st.DeadLetters != 0 {
		t.Fatalf("projections: stats %+v; want 1 key compacted", st)
	}
	p.waitFor(t, "the search documents to equal SQL", func() bool {
		return reflect.DeepEqual(searchSummaries(ctx, t, p.es, p.index), want)
	})
}

// TestReadModelRebuildIntoTheSameIndex: the summaries run into a search
// index; then the orders topic loses its records (as retention drops them)
// and the read model is rebuilt from what the topics hold under another
// group (new, empty tables) into the same index. The rebuilt states count
// fewer revisions than the first tables did, but start a later generation,
// so their writes are not refused as older than the documents the first
// tables left: a change after the rebuild reaches the index, a delete
// removes its document, and nothing is dead-lettered.
func TestReadModelRebuildIntoTheSameIndex(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "rebuild", 0)
	s := c.stem
	p := newPipeline(t, c, c.reg)
	p.start(ctx, t, summariesProc, orders.Summaries(s, s, p.index), processors.Config{Elasticsearch: p.es})
	c.exec(ctx, t, "INSERT INTO "+s+".customers VALUES (1, 'Ada', 'retail')")
	c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount) VALUES (1, 1, 10.00), (2, 1, 20.00)")
	for _, status := range []string{"paid", "shipped", "cancelled", "paid", "shipped"} {
		c.exec(ctx, t, "UPDATE "+s+".orders SET status = $1 WHERE id = 1", status)
	}
	want := sqlSummaries(ctx, t, c)
	p.waitFor(t, "the search documents to equal SQL", func() bool {
		return reflect.DeepEqual(searchSummaries(ctx, t, p.es, p.index), want)
	})
	p.stopAll(t)
	adm := kadm.NewClient(kgoClient(t, c.brokers))
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, c.topic)
	if err != nil {
		t.Fatal(err)
	}
	trim := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) { trim.AddOffset(o.Topic, o.Partition, o.Offset, -1) })
	if _, err := adm.DeleteRecords(ctx, trim); err != nil {
		t.Fatal(err)
	}

	const rebuilt = "rebuilt"
	p.start(ctx, t, rebuilt, orders.Summaries(s, s, p.index), processors.Config{Elasticsearch: p.es})
	defer p.stopAll(t)
	c.exec(ctx, t, "UPDATE "+s+".orders SET status = 'cancelled' WHERE id = 1")
	c.exec(ctx, t, "DELETE FROM "+s+".orders WHERE id = 2")
	want = sqlSummaries(ctx, t, c)
	p.waitFor(t, "the rebuilt read model to equal SQL", func() bool {
		return reflect.DeepEqual(summariesOf(t, p.summary, readTable(ctx, t, c.brokers, processors.ReadModelTable(s+"-"+rebuilt, p.summary))), want)
	})
	p.waitFor(t, "the search documents to follow the rebuilt read model", func() bool {
		return reflect.DeepEqual(searchSummaries(ctx, t, p.es, p.index), want)
	})
	if st := p.stats(rebuilt); st.DeadLetters != 0 {
		t.Fatalf("rebuilt: stats %+v; want no dead letters", st)
	}
}
