package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/redis/go-redis/v9"
)

// A seriesRef is one metric series a topology keeps in Redis: a hash of
// buckets, or a sorted set when it is ranked.
type seriesRef struct {
	Topology string
	// Key is its Redis key, <prefix>:<topology>:<Name>.
	Key, Name string
	Ranked    bool
}

// family splits the series' name into the family it is charted with and
// its period: "revenue_cents_per_minute:2026-11-21T21" is one hour of the
// family revenue_cents_per_minute; a name without ':' is a family of its
// own, without period. A ranking is charted alone: its family is its name.
func (s seriesRef) family() (family, period string) {
	if s.Ranked {
		return s.Name, ""
	}
	family, period, _ = strings.Cut(s.Name, ":")
	return family, period
}

// chartID is the ID of the chart the series is drawn in.
func (s seriesRef) chartID() string {
	f, _ := s.family()
	return s.Topology + "/" + f
}

// metricsSource reads the series of topologies from Redis, where
// redismetrics keeps them.
type metricsSource struct {
	rdb   redis.UniversalClient
	store *redismetrics.Store
}

// keyPrefix is what every series key of topology starts with.
func (m *metricsSource) keyPrefix(topology string) string { return m.store.SeriesKey(topology, "") }

// seriesOf returns the series the Redis key of one of topology's series
// names, ok false when key is not one (the rows hash, another topology's).
func (m *metricsSource) seriesOf(topology, key string) (name string, ok bool) {
	name, ok = strings.CutPrefix(key, m.keyPrefix(topology))
	return name, ok && name != "" && !engine.IsStateName(name)
}

// discover lists the series topology keeps in Redis, in key order: every
// hash and sorted set under its key prefix but the rows hash. It scans the
// keyspace (SCAN, not KEYS), so it does not block Redis.
func (m *metricsSource) discover(ctx context.Context, topology string) ([]seriesRef, error) {
	var keys []string
	iter := m.rdb.Scan(ctx, 0, redismetrics.GlobEscape(m.keyPrefix(topology))+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if _, ok := m.seriesOf(topology, iter.Val()); ok {
			keys = append(keys, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan the series of %s in Redis: %w", topology, err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys) // SCAN may return a key twice
	return m.typed(ctx, topology, keys)
}

// typed looks up the type of each of topology's keys and returns the
// series among them; keys that are gone, or neither hashes nor sorted sets,
// are left out.
func (m *metricsSource) typed(ctx context.Context, topology string, keys []string) ([]seriesRef, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := m.rdb.Pipeline()
	types := make([]*redis.StatusCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the types of the series of %s in Redis: %w", topology, err)
	}
	var refs []seriesRef
	for i, k := range keys {
		name, _ := m.seriesOf(topology, k)
		switch types[i].Val() {
		case "hash":
			refs = append(refs, seriesRef{Topology: topology, Key: k, Name: name})
		case "zset":
			refs = append(refs, seriesRef{Topology: topology, Key: k, Name: name, Ranked: true})
		}
	}
	return refs, nil
}

// chart reads the series of one chart (all of one chart ID) and builds it.
// A series found gone or of another type than refs say is left out of the
// chart; kept returns those still there.
func (m *metricsSource) chart(ctx context.Context, refs []seriesRef) (c Chart, kept []seriesRef, err error) {
	if len(refs) == 0 {
		return Chart{}, nil, nil
	}
	refs = slices.SortedFunc(slices.Values(refs), func(a, b seriesRef) int { return cmp.Compare(a.Key, b.Key) })
	pipe := m.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(refs))
	tops := make([]*redis.ZSliceCmd, len(refs))
	cards := make([]*redis.IntCmd, len(refs))
	for i, r := range refs {
		if r.Ranked {
			tops[i] = pipe.ZRevRangeWithScores(ctx, r.Key, 0, maxRanked-1)
			cards[i] = pipe.ZCard(ctx, r.Key)
		} else {
			hashes[i] = pipe.HGetAll(ctx, r.Key)
		}
	}
	// A key that changed type fails its own command (WRONGTYPE), and is
	// left out below; any other failure fails the chart.
	if _, err := pipe.Exec(ctx); err != nil && !wrongType(err) {
		return Chart{}, nil, fmt.Errorf("read series %s in Redis: %w", refs[0].chartID(), err)
	}
	data := make([]periodData, 0, len(refs))
	for i, r := range refs {
		_, period := r.family()
		d := periodData{Period: period}
		if r.Ranked {
			if tops[i].Err() != nil || cards[i].Err() != nil {
				continue
			}
			for _, z := range tops[i].Val() {
				d.Ranking = append(d.Ranking, Point{Label: fmt.Sprint(z.Member), Value: int64(math.Round(z.Score))})
			}
			d.Members = cards[i].Val()
			if d.Members == 0 {
				continue
			}
		} else {
			if hashes[i].Err() != nil {
				continue
			}
			d.Buckets = make(map[string]int64, len(hashes[i].Val()))
			for bucket, v := range hashes[i].Val() {
				// redismetrics keeps integers; anything else is not a
				// metric's and is left out.
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n != 0 {
					d.Buckets[bucket] = n
				}
			}
			if len(hashes[i].Val()) == 0 {
				continue
			}
		}
		data = append(data, d)
		kept = append(kept, r)
	}
	family, _ := refs[0].family()
	return buildChart(refs[0].Topology, family, refs[0].Ranked, data), kept, nil
}

func wrongType(err error) bool { return strings.HasPrefix(err.Error(), "WRONGTYPE") }
