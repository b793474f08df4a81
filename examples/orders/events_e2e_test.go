package orders_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOrderEventsEndToEnd derives the order events from real capture output
// and checks them one by one; then every change is delivered a second time,
// and no event may be emitted twice.
func TestOrderEventsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "ev", 0)
	stem, brokers, reg, captureDone := c.stem, c.brokers, c.reg, c.done
	exec := func(sql string, args ...any) { t.Helper(); c.exec(ctx, t, sql, args...) }
	output := "events." + stem + ".Order"
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	proc, err := processors.NewProcessor(orders.Events(stem, stem, output), processors.Config{
		Brokers: brokers, Decoder: serde.NewDecoder(reg), Encoder: serde.NewEncoder(reg, stem), Redis: rdb, Group: stem + "-events",
	})
	if err != nil {
		t.Fatal(err)
	}
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(ctx) }()

	table := stem + ".orders"
	exec("INSERT INTO "+table+" (id, customer_id, amount, created_at) VALUES (1, 7, 10.00, $1), (2, 8, 20.50, $1)", time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))
	exec("UPDATE " + table + " SET status = 'paid' WHERE id = 1")
	exec("UPDATE " + table + " SET amount = 11.00 WHERE id = 1")                              // no transition: an amount change
	exec("UPDATE " + table + " SET created_at = created_at + interval '1 hour' WHERE id = 1") // neither: no event
	exec("UPDATE " + table + " SET status = 'shipped' WHERE id = 1")
	exec("UPDATE " + table + " SET status = 'cancelled' WHERE id = 2")
	exec("DELETE FROM " + table + " WHERE id = 2")

	type got struct {
		typ, aggregate string
		data           map[string]any
	}
	read := func(n int) ([]got, []serde.DomainEvent) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		dec := serde.NewDecoder(reg)
		var out []got
		var events []serde.DomainEvent
		deadline := time.Now().Add(90 * time.Second)
		for len(out) < n || time.Now().Before(deadline.Add(-87*time.Second)) {
			if time.Now().After(deadline) {
				t.Fatalf("read %d of %d events", len(out), n)
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := cl.PollFetches(pctx)
			pcancel()
			for _, r := range fs.Records() {
				ev, data, err := dec.DecodeEventRecord(ctx, r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if string(r.Key) != ev.AggregateID {
					t.Errorf("event %s keyed %q, want its aggregate %s", ev.ID, r.Key, ev.AggregateID)
				}
				out = append(out, got{ev.Type, ev.AggregateID, data})
				events = append(events, ev)
			}
		}
		return out, events
	}
	first, events := read(7)
	byAggregate := map[string][]string{}
	for _, g := range first {
		byAggregate[g.aggregate] = append(byAggregate[g.aggregate], g.typ)
	}
	want := map[string][]string{
		"1": {"OrderCreated", "OrderPaid", "OrderAmountChanged", "OrderShipped"},
		"2": {"OrderCreated", "OrderCancelled", "OrderDeleted"},
	}
	if !reflect.DeepEqual(byAggregate, want) || len(first) != 7 {
		t.Fatalf("events %v, want %v", byAggregate, want)
	}
	for _, ev := range events {
		if ev.ID != topologies.EventID(ev.Position, ev.AggregateID, ev.Type) {
			t.Errorf("event %s of %s has id %s, not the one its position gives", ev.Type, ev.AggregateID, ev.ID)
		}
	}
	for _, g := range first {
		if g.typ == "OrderPaid" && (g.data["customer_id"] != int64(7) || g.data["amount"] != "10") {
			t.Errorf("OrderPaid data %v", g.data)
		}
		if g.typ == "OrderShipped" && (g.data["customer_id"] != int64(7) || g.data["amount"] != "11") {
			t.Errorf("OrderShipped data %v", g.data)
		}
		if g.typ == "OrderDeleted" && (g.data["customer_id"] != int64(8) || g.data["amount"] != "20.5") {
			t.Errorf("OrderDeleted data %v: want the deleted row's customer and amount", g.data)
		}
	}

	// Deliver every change again: nothing more may be emitted.
	changes := copyTopic(t, ctx, brokers, serde.Topic(stem, stem, "orders"))
	deadline := time.Now().Add(90 * time.Second)
	for proc.Stats().Changes < 2*changes {
		if time.Now().After(deadline) {
			t.Fatalf("processor handled %d of %d changes", proc.Stats().Changes, 2*changes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again, _ := read(7)
	if len(again) != 7 {
		t.Fatalf("after redelivery the event topic holds %d events, want the same 7", len(again))
	}
	if st := proc.Stats(); st.Duplicates != changes {
		t.Errorf("stats %+v: want %d duplicates", st, changes)
	}
	cancel()
	<-procDone
	<-captureDone
}
