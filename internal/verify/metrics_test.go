package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
)

type order struct {
	ID     int64
	Status string
	Cents  int64
}

// rows is a Source of fixed rows.
type rows map[string][]engine.CurrentRow

func (r rows) Rows(_ context.Context, topic string) ([]engine.CurrentRow, error) {
	return r[topic], nil
}

// TestMetricsAgainstRedis writes metrics with the processors' Redis store,
// then compares them with rows that differ in known ways: the differences
// name the buckets and the rows, a per-hour series with a TTL that Redis
// dropped after changes were applied to it is left out, and one no change
// reached yet is a difference.
func TestMetricsAgainstRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("verify%d", rand.IntN(1_000_000_000))
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	table := topologies.TableOf[order]("shop", "public", "orders")
	node := topologies.Metrics(table, func(o order) []topologies.Sample {
		return []topologies.Sample{
			{Series: "per_status", Bucket: o.Status, Value: 1},
			{Series: "cents_by_order", Bucket: fmt.Sprint(o.ID), Value: o.Cents, Ranked: true},
			{Series: "hour:" + fmt.Sprint(o.ID%2), Bucket: "00", Value: o.Cents, TTL: time.Hour},
		}
	}).Engine().(*engine.Metrics)
	store := redismetrics.New(rdb, prefix)
	row := func(o order) engine.CurrentRow {
		r, err := table.Row(o)
		if err != nil {
			t.Fatal(err)
		}
		return engine.CurrentRow{Key: change.Row{"id": o.ID}, Row: r}
	}
	apply := func(o order, lsn change.LSN) {
		samples, err := node.Measure(row(o).Row)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Apply(ctx, "shop", engine.RowIdentity(string(table.Topic), change.Row{"id": o.ID}), change.Position{CommitLSN: lsn}, samples); err != nil {
			t.Fatal(err)
		}
	}
	apply(order{1, "new", 100}, 1)
	apply(order{2, "paid", 250}, 2)
	c := &collector{topology: "shop", sinks: Sinks{Redis: rdb, RedisPrefix: prefix}}

	c.src = rows{string(table.Topic): {row(order{1, "new", 100}), row(order{2, "paid", 250})}}
	r, err := c.metrics(ctx, node)
	if err != nil || len(r.Differences) != 0 || len(r.Notes) != 0 {
		t.Fatalf("the rows Redis was given: %+v, %v", r, err)
	}

	rdb.Del(ctx, prefix+":shop:hour:0") // order 2's hour ended
	c.src = rows{string(table.Topic): {row(order{1, "new", 100}), row(order{2, "shipped", 250}), row(order{4, "new", 5})}}
	r, err = c.metrics(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	want := []Difference{
		{Key: "cents_by_order[4]", Source: "5"},
		{Key: "per_status[new]", Source: "2", Sink: "1"},
		{Key: "per_status[paid]", Sink: "1"},
		{Key: "per_status[shipped]", Source: "1"},
		{Key: "row shop.public.orders|id=2", Source: "per_status[shipped]=1", Sink: "per_status[paid]=1"},
		{Key: "row shop.public.orders|id=4", Source: "cents_by_order[4]=5, hour:0[00]=5, per_status[new]=1"},
	}
	if !reflect.DeepEqual(r.Differences, want) {
		t.Errorf("differences:\n%+v\nwant\n%+v", r.Differences, want)
	}
	if len(r.Notes) != 1 {
		t.Errorf("notes %v, want one on the expired series", r.Notes)
	}
}
