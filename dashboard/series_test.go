package dashboard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
)

// metricsFixture is a Redis key prefix of a test's own on the real Redis,
// written through redismetrics as a processor writes it.
type metricsFixture struct {
	rdb    *redis.Client
	prefix string
	store  *redismetrics.Store
	pos    uint64
}

func newMetricsFixture(t *testing.T, prefix string) *metricsFixture {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix = fmt.Sprintf("%s_%d", prefix, rand.IntN(1_000_000_000))
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, redismetrics.GlobEscape(prefix)+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return &metricsFixture{rdb: rdb, prefix: prefix, store: redismetrics.New(rdb, prefix)}
}

// apply records that row of topology now contributes samples, at the next
// position.
func (f *metricsFixture) apply(t *testing.T, topology, row string, samples ...topologies.Sample) {
	t.Helper()
	f.pos++
	pos := change.Position{CommitLSN: change.LSN(f.pos), Index: 0}
	if _, err := f.store.Apply(context.Background(), topology, row, pos, samples); err != nil {
		t.Fatal(err)
	}
}

func (f *metricsFixture) source() *metricsSource { return &metricsSource{rdb: f.rdb, store: f.store} }

// A user's topology of their own: every kind of series, next to a
// topology whose name starts with the same letters.
func TestDiscoverListsEverySeriesOfTheTopology(t *testing.T) {
	ctx := context.Background()
	f := newMetricsFixture(t, "dash[disc]*") // glob characters in the prefix match only themselves
	f.apply(t, "shipping", "shipments|id=1",
		topologies.Sample{Series: "shipments_per_status", Bucket: "new", Value: 1},
		topologies.Sample{Series: "top_warehouses", Bucket: "berlin", Value: 3, Ranked: true},
		topologies.Sample{Series: "parcels_per_minute:2026-11-21T21", Bucket: "04", Value: 2, TTL: time.Hour})
	f.apply(t, "shipping", "shipments|id=2",
		topologies.Sample{Series: "shipments_per_status", Bucket: "sent", Value: 1},
		topologies.Sample{Series: "parcels_per_minute:2026-11-21T22", Bucket: "00", Value: 5, TTL: time.Hour})
	f.apply(t, "shipping-eu", "shipments|id=1", topologies.Sample{Series: "not_mine", Bucket: "x", Value: 1})
	f.rdb.Set(ctx, f.prefix+":shipping:a_string", "not a series", 0)

	src := f.source()
	refs, err := src.discover(ctx, "shipping")
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string) string { return f.prefix + ":shipping:" + name }
	want := []seriesRef{
		{Topology: "shipping", Key: key("parcels_per_minute:2026-11-21T21"), Name: "parcels_per_minute:2026-11-21T21"},
		{Topology: "shipping", Key: key("parcels_per_minute:2026-11-21T22"), Name: "parcels_per_minute:2026-11-21T22"},
		{Topology: "shipping", Key: key("shipments_per_status"), Name: "shipments_per_status"},
		{Topology: "shipping", Key: key("top_warehouses"), Name: "top_warehouses", Ranked: true},
	}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("discover:\n got %+v\nwant %+v (not the rows hash, a string, or shipping-eu's)", refs, want)
	}

	charts := map[string]Chart{}
	byChart := map[string][]seriesRef{}
	for _, r := range refs {
		byChart[r.chartID()] = append(byChart[r.chartID()], r)
	}
	for id, rs := range byChart {
		c, kept, err := src.chart(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		if len(kept) != len(rs) {
			t.Errorf("%s: kept %d of %d series", id, len(kept), len(rs))
		}
		charts[id] = c
	}
	if len(charts) != 3 {
		t.Fatalf("%d charts, want 3 (the per-minute series merged): %v", len(charts), charts)
	}
	if got := charts["shipping/parcels_per_minute"].Points; !reflect.DeepEqual(got, []Point{{"2026-11-21T21:04", 2}, {"2026-11-21T22:00", 5}}) {
		t.Errorf("per minute: %v", got)
	}
	if got := charts["shipping/shipments_per_status"].Points; !reflect.DeepEqual(got, []Point{{"new", 1}, {"sent", 1}}) {
		t.Errorf("per status: %v", got)
	}
	if c := charts["shipping/top_warehouses"]; c.Kind != kindRanking || !reflect.DeepEqual(c.Points, []Point{{"berlin", 3}}) || c.Buckets != 1 {
		t.Errorf("ranking: %+v", c)
	}

	// A row moving bucket and a series emptied: the chart follows Redis.
	f.apply(t, "shipping", "shipments|id=1", topologies.Sample{Series: "shipments_per_status", Bucket: "sent", Value: 1})
	c, kept, err := src.chart(ctx, byChart["shipping/top_warehouses"])
	if err != nil || len(kept) != 0 || !c.Removed {
		t.Errorf("emptied ranking: %+v, kept %v, %v", c, kept, err)
	}
	c, _, err = src.chart(ctx, byChart["shipping/shipments_per_status"])
	if err != nil || !reflect.DeepEqual(c.Points, []Point{{"sent", 2}}) {
		t.Errorf("per status after the move: %v, %v", c.Points, err)
	}
}

func TestDiscoverWithoutSeries(t *testing.T) {
	f := newMetricsFixture(t, "dash_none")
	refs, err := f.source().discover(context.Background(), "nothing")
	if err != nil || len(refs) != 0 {
		t.Fatalf("discover: %v, %v", refs, err)
	}
}
