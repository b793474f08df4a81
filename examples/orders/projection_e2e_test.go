package orders_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// createTopic creates topic with partitions partitions.
func createTopic(ctx context.Context, t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// sqlLTV is the customer-ltv projection as SQL over the orders table computes
// it, by customer id.
func sqlLTV(ctx context.Context, t *testing.T, db *pgx.Conn, table string) map[string]orders.CustomerLTV {
	t.Helper()
	out := map[string]orders.CustomerLTV{}
	query := func(sql string, scan func(rows pgx.Rows) error) {
		t.Helper()
		rows, err := db.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query("SELECT customer_id, id, status, (amount * 100)::bigint FROM "+table, func(rows pgx.Rows) error {
		var customer, id, cents int64
		var status string
		if err := rows.Scan(&customer, &id, &status, &cents); err != nil {
			return err
		}
		c := strconv.FormatInt(customer, 10)
		s := out[c]
		if s.Orders == nil {
			s.Orders, s.OrdersPerStatus = map[string]orders.CustomerOrder{}, map[string]int64{}
		}
		s.Orders[strconv.FormatInt(id, 10)] = orders.CustomerOrder{Status: status, AmountCents: cents}
		out[c] = s
		return nil
	})
	query("SELECT customer_id, status, count(*) FROM "+table+" GROUP BY customer_id, status", func(rows pgx.Rows) error {
		var customer, n int64
		var status string
		if err := rows.Scan(&customer, &status, &n); err != nil {
			return err
		}
		out[strconv.FormatInt(customer, 10)].OrdersPerStatus[status] = n
		return nil
	})
	query("SELECT customer_id, (coalesce(sum(amount) FILTER (WHERE status IN ('paid', 'shipped')), 0) * 100)::bigint FROM "+table+" GROUP BY customer_id",
		func(rows pgx.Rows) error {
			var customer, ltv int64
			if err := rows.Scan(&customer, &ltv); err != nil {
				return err
			}
			c := strconv.FormatInt(customer, 10)
			s := out[c]
			s.LifetimeValueCents = ltv
			out[c] = s
			return nil
		})
	return out
}

// tableValues reads a goka table topic: the last value of every key.
func tableValues(ctx context.Context, t *testing.T, brokers []string, topic string) (map[string][]byte, int) {
	t.Helper()
	records := committedRecords(ctx, t, brokers, topic)
	out := map[string][]byte{}
	for _, r := range records {
		out[string(r.Key)] = r.Value
	}
	return out, len(records)
}

// TestCustomerLTVEndToEnd runs capture, the order events topology and the
// customer-ltv projection on a workload of inserts, status transitions,
// amount changes and deletes, over a change topic of 4 partitions (so that
// one customer's orders arrive on several), and checks that the projection
// equals what SQL says about the table. Then it rebuilds the projection
// under a new group from the start of the event topic and checks that the
// rebuilt table equals the live one byte for byte; then delivers every event
// a second time and checks that neither table changes.
func TestCustomerLTVEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "ltv", 4)
	topic := "events." + c.stem + ".Order"
	failed := map[string]<-chan error{"capture": c.done}
	procs := map[string]*processors.Processor{}
	start := func(name string, topo *topologies.Topology, cfg processors.Config) *processors.Processor {
		t.Helper()
		cfg.Brokers, cfg.Decoder = c.brokers, serde.NewDecoder(c.reg)
		cfg.DeadLetterTopic = c.stem + "." + name + ".dlq"
		p, err := processors.NewProcessor(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		failed[name] = done
		procs[name] = p
		go func() { done <- p.Run(ctx) }()
		return p
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntilDescribed(t, what, 120*time.Second, cond, failed, func() string {
			var b strings.Builder
			for name, p := range procs {
				fmt.Fprintf(&b, "\n  %s: ready %v, %+v, lag %v", name, p.Ready(), p.Stats(), p.Lag())
			}
			return b.String()
		})
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	// waitCommitted waits until a projection's group has committed every
	// record of the event topic and its loop topic: goka commits a record
	// only once what its callback wrote is stored, so the table topic then
	// holds every write. The event topic is written in transactions: its
	// last offset is a commit marker, which a consumer never commits past.
	waitCommitted := func(group string) {
		t.Helper()
		loop := group + "-" + orders.CustomerLTVProjection + "-loop" // goka's name for the group's loop topic
		waitFor(group+" to commit its input", func() bool {
			ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic, loop)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := kadm.NewClient(adm).FetchOffsets(ctx, group+"-"+orders.CustomerLTVProjection)
			if err != nil {
				t.Fatal(err)
			}
			done := true
			ends.Each(func(end kadm.ListedOffset) {
				last := end.Offset
				if end.Topic == topic {
					last-- // the marker
				}
				if o, ok := committed.Lookup(end.Topic, end.Partition); end.Offset > 0 && (!ok || o.At < last) {
					done = false
				}
			})
			return done
		})
	}
	events := start("events", orders.Events(c.stem, c.stem, topic), processors.Config{Encoder: serde.NewEncoder(c.reg, c.stem), Group: c.stem + "-events"})
	waitFor("the event topic", func() bool {
		details, err := kadm.NewClient(adm).ListTopics(ctx, topic)
		return err == nil && len(details[topic].Partitions) == 4
	})
	live := start("live", orders.Projections(topic), processors.Config{Group: c.stem + "-live"})
	node := orders.CustomerLTVNode(topic)
	liveTable := processors.ProjectionTable(c.stem+"-live", node)

	// The workload: a scripted part, then random changes.
	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount) VALUES (1, 1, 10.00), (2, 1, 20.50), (3, 2, 5.25), (4, 2, 100.00), (5, 3, 7.77)")
	c.exec(ctx, t, "UPDATE "+c.table+" SET status = 'paid' WHERE id IN (1, 2, 3, 5)")
	c.exec(ctx, t, "UPDATE "+c.table+" SET status = 'shipped' WHERE id = 1")
	c.exec(ctx, t, "UPDATE "+c.table+" SET status = 'cancelled' WHERE id = 2")            // paid, then cancelled
	c.exec(ctx, t, "UPDATE "+c.table+" SET amount = 6.00 WHERE id = 3")                   // changed after payment
	c.exec(ctx, t, "UPDATE "+c.table+" SET amount = 99.99, status = 'paid' WHERE id = 4") // both at once
	c.exec(ctx, t, "DELETE FROM "+c.table+" WHERE id = 5")                                // customer 3 has no order left
	c.exec(ctx, t, "UPDATE "+c.table+" SET created_at = created_at - interval '1 day' WHERE id = 1")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range 300 {
		id := 10 + rng.IntN(40)
		switch rng.IntN(6) {
		case 0:
			c.exec(ctx, t, "DELETE FROM "+c.table+" WHERE id = $1", id)
		case 1:
			c.exec(ctx, t, "UPDATE "+c.table+" SET amount = $2::numeric / 100 WHERE id = $1", id, rng.IntN(100_000))
		case 2, 3:
			c.exec(ctx, t, "UPDATE "+c.table+" SET status = $2 WHERE id = $1", id, []string{"paid", "shipped", "cancelled"}[rng.IntN(3)])
		default:
			c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount) VALUES ($1, $2, $3::numeric / 100) ON CONFLICT (id) DO NOTHING",
				id, 10+rng.IntN(6), rng.IntN(100_000))
		}
		if i%50 == 0 {
			c.exec(ctx, t, "UPDATE "+c.table+" SET status = 'paid', amount = amount + 1 WHERE id >= 10 AND id % 7 = $1", rng.IntN(7))
		}
	}

	want := sqlLTV(ctx, t, c.db, c.table)
	if want["1"].LifetimeValueCents != 1000 || want["2"].LifetimeValueCents != 600+9999 || want["3"].Orders != nil {
		t.Fatalf("the scripted workload left unexpected rows: %+v %+v %+v", want["1"], want["2"], want["3"])
	}
	var got map[string][]byte
	waitFor("the projection to equal SQL", func() bool {
		got, _ = tableValues(ctx, t, c.brokers, string(liveTable))
		return reflect.DeepEqual(gotLTV(t, node, got), want)
	})
	if _, ok := got["3"]; !ok {
		t.Error("customer 3, whose only order was deleted, has no state (the positions it keeps)")
	}

	// Every change became events, and every event was folded once.
	changes := int64(0)
	changeRecords := c.records(ctx, t, c.topic)
	for _, r := range changeRecords {
		if r.Value != nil {
			changes++
		}
	}
	waitFor("the events topology to handle every change", func() bool { return events.Stats().Changes == changes })
	records := c.records(ctx, t, topic)
	n := int64(len(records))
	// The events group keeps each row's state in the partition of its
	// table that its changes have in the change topic, as goka requires: a
	// restarted or rebalanced processor recovers a partition's rows from
	// that partition of the table.
	partitionOf := map[string]int32{}
	for _, r := range changeRecords {
		partitionOf[string(r.Key)] = r.Partition
	}
	state := committedRecords(ctx, t, c.brokers, c.stem+"-events-table")
	misplaced := 0
	for _, r := range state {
		if p, ok := partitionOf[string(r.Key)]; !ok || p != r.Partition {
			misplaced++
		}
	}
	if len(state) == 0 || misplaced > 0 {
		t.Fatalf("%d of the %d row states of the events group are not in their rows' partition", misplaced, len(state))
	}
	waitFor("the projection to count every event", func() bool { return live.Stats().Changes == n })
	waitCommitted(c.stem + "-live")
	if st := live.Stats(); st.Duplicates != 0 || st.DeadLetters != 0 {
		t.Fatalf("live projection stats %+v before any redelivery", st)
	}
	t.Logf("%d changes, %d events, %d customers", changes, n, len(want))
	// One customer's orders came from several partitions of the event topic.
	partitions := map[int64]map[int32]bool{}
	dec := serde.NewDecoder(c.reg)
	for _, r := range records {
		_, data, err := dec.DecodeEventRecord(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		customer := data["customer_id"].(int64)
		if partitions[customer] == nil {
			partitions[customer] = map[int32]bool{}
		}
		partitions[customer][r.Partition] = true
	}
	spread := false
	for _, parts := range partitions {
		spread = spread || len(parts) > 1
	}
	if !spread {
		t.Fatalf("no customer's events span partitions: %v", partitions)
	}

	// The query side: a view of the table.
	view, err := views.Projection(c.brokers, c.stem+"-live", node)
	if err != nil {
		t.Fatal(err)
	}
	viewDone := make(chan error, 1)
	go func() { viewDone <- view.Run(ctx) }()
	waitUntil(t, "the view to catch up", 60*time.Second, view.Recovered, map[string]<-chan error{"view": viewDone})
	for customer, w := range want {
		ltv, ok, err := view.Get(customer)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !reflect.DeepEqual(ltv, w) {
			t.Fatalf("view of customer %s: %+v (found: %v), want %+v", customer, ltv, ok, w)
		}
	}

	// Rebuild: the same projection under a new group reads the event topic
	// from its start into a new table.
	liveValues, liveRecords := tableValues(ctx, t, c.brokers, string(liveTable))
	rebuild := start("rebuild", orders.Projections(topic), processors.Config{Group: c.stem + "-rebuild"})
	rebuiltTable := processors.ProjectionTable(c.stem+"-rebuild", node)
	waitFor("the rebuild to count every event", func() bool { return rebuild.Stats().Changes == n })
	waitCommitted(c.stem + "-rebuild")
	rebuilt, _ := tableValues(ctx, t, c.brokers, string(rebuiltTable))
	equal := func(a, b map[string][]byte) bool {
		return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
	}
	t.Logf("live table: %d keys in %d records; rebuilt: %d keys", len(liveValues), liveRecords, len(rebuilt))
	if !equal(rebuilt, liveValues) {
		t.Fatalf("the rebuilt table differs from the live one:\nrebuilt %q\nlive    %q", rebuilt, liveValues)
	}

	// Every event a second time: nothing changes, nothing is written.
	if copied := copyTopic(t, ctx, c.brokers, topic); copied != n {
		t.Fatalf("copied %d events, want %d", copied, n)
	}
	for name, p := range map[string]*processors.Processor{"live": live, "rebuild": rebuild} {
		waitFor(name+" to count every event twice", func() bool { return p.Stats().Changes == 2*n })
		waitCommitted(c.stem + "-" + name)
		if st := p.Stats(); st.Duplicates != n || st.DeadLetters != 0 {
			t.Errorf("%s stats %+v: want %d duplicates", name, st, n)
		}
	}
	again, records2 := tableValues(ctx, t, c.brokers, string(liveTable))
	if !equal(again, liveValues) || records2 != liveRecords {
		t.Fatalf("redelivery changed the live table (%d records, were %d)", records2, liveRecords)
	}
	if rebuilt2, _ := tableValues(ctx, t, c.brokers, string(rebuiltTable)); !equal(rebuilt2, liveValues) {
		t.Fatal("redelivery changed the rebuilt table")
	}
	cancel()
	for name, done := range failed {
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := <-viewDone; err != nil {
		t.Errorf("view: %v", err)
	}
}
