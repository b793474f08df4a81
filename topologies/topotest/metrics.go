package topotest

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// metricsNode applies changes as the processor's Redis metrics sink does:
// per row the position of the last applied change and what that version of
// the row contributed; a change at or before that position changes nothing,
// a later one moves every series by the difference between the row's new
// and stored contributions, and a bucket that falls to zero is removed.
type metricsNode struct{ node *engine.Metrics }

func (m metricsNode) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	if ev.Op == change.OpTruncate {
		h.metrics.truncate(rec.Topic, ev.Position)
		h.stats.Changes++
		return nil
	}
	samples, err := m.node.Measure(ev.After)
	if err != nil { // the processor dead-letters it, and goes on
		h.deadLetter(rec, fmt.Errorf("measure change at %s of %s: %w", ev.Position, ev.TableName(), err))
		return nil
	}
	applied, err := h.metrics.apply(engine.RowIdentity(rec.Topic, rec.Key), ev.Position, samples)
	if err != nil {
		return fmt.Errorf("apply metrics of change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	h.stats.Changes++
	if !applied {
		h.stats.Duplicates++
	}
	return nil
}

// metricStore holds what Redis holds for a topology's metrics.
type metricStore struct {
	rows      map[string]appliedRow
	series    map[string]*series
	truncated map[string]change.Position // by topic: the last truncate
}

type appliedRow struct {
	pos     change.Position
	samples []topologies.Sample
}

type series struct {
	ranked  bool
	buckets map[string]int64
	ttl     time.Duration
}

func newMetricStore() metricStore {
	return metricStore{rows: map[string]appliedRow{}, series: map[string]*series{}}
}

type cell struct {
	series, bucket string
	delta          int64
	ranked         bool
	ttl            time.Duration
}

// truncate applies a truncate of the table of topic at pos as the Redis
// store does: every row of the table whose last applied change came before
// pos stops contributing, and a change of the table at or before pos is
// ignored from then on.
func (m *metricStore) truncate(topic string, pos change.Position) {
	for _, row := range sortedKeys(m.rows) {
		if stored := m.rows[row]; strings.HasPrefix(row, topic+"|") && stored.pos.Compare(pos) < 0 {
			m.apply(row, pos, nil) // cannot fail: it removes samples applied before
			delete(m.rows, row)
		}
	}
	if t, ok := m.truncated[topic]; !ok || t.Compare(pos) < 0 {
		if m.truncated == nil {
			m.truncated = map[string]change.Position{}
		}
		m.truncated[topic] = pos
	}
}

func (m *metricStore) apply(row string, pos change.Position, samples []topologies.Sample) (bool, error) {
	if t, ok := m.truncated[strings.SplitN(row, "|", 2)[0]]; ok && t.Compare(pos) >= 0 {
		return false, nil // its row was truncated
	}
	stored, ok := m.rows[row]
	if ok && stored.pos.Compare(pos) >= 0 {
		return false, nil
	}
	// Sum what the row contributed and contributes per series and bucket;
	// a cell takes its kind from its first sample and its TTL from the new
	// ones, as the Redis script does.
	var cells []*cell
	index := map[[2]string]*cell{}
	add := func(s topologies.Sample, sign int64) {
		k := [2]string{s.Series, s.Bucket}
		c := index[k]
		if c == nil {
			c = &cell{series: s.Series, bucket: s.Bucket, ranked: s.Ranked, ttl: s.TTL}
			index[k] = c
			cells = append(cells, c)
		}
		c.delta += sign * s.Value
		if sign > 0 {
			c.ttl = s.TTL
		}
	}
	for _, s := range stored.samples {
		add(s, -1)
	}
	for _, s := range samples {
		add(s, 1)
	}
	for _, c := range cells {
		if c.delta == 0 {
			continue
		}
		s := m.series[c.series]
		if s == nil {
			s = &series{ranked: c.ranked, buckets: map[string]int64{}}
			m.series[c.series] = s
		}
		if s.ranked != c.ranked {
			// Redis fails the script here, keeping what it wrote before.
			return false, fmt.Errorf("series %s is ranked in one sample and not in another (Redis: WRONGTYPE); give every sample of a series the same Ranked", c.series)
		}
		if s.buckets[c.bucket] += c.delta; s.buckets[c.bucket] == 0 {
			delete(s.buckets, c.bucket)
		}
		if ttl := c.ttl.Truncate(time.Second); ttl > 0 {
			s.ttl = ttl
		}
		if len(s.buckets) == 0 {
			delete(m.series, c.series) // Redis drops an empty key, and its TTL
		}
	}
	m.rows[row] = appliedRow{pos: pos, samples: samples}
	return true, nil
}

// Series returns the buckets of a series and their values (none is zero),
// ranked or not (redismetrics.Store reads the first kind with Series,
// the second with Ranking).
func (h *Harness) Series(name string) map[string]int64 {
	out := map[string]int64{}
	if s := h.metrics.series[name]; s != nil {
		maps.Copy(out, s.buckets)
	}
	return out
}

// Metrics returns every series and its buckets.
func (h *Harness) Metrics() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(h.metrics.series))
	for name := range h.metrics.series {
		out[name] = h.Series(name)
	}
	return out
}

// Rank is a bucket of a ranked series and its value.
type Rank struct {
	Bucket string
	Value  int64
}

// Ranking returns a ranked series ([topologies.Sample.Ranked]), highest
// value first, ties in reverse bucket order, as Redis's ZREVRANGE reads a
// sorted set. It fails the test if the series exists and is not ranked.
func (h *Harness) Ranking(name string) []Rank {
	h.helper.Helper()
	s := h.metrics.series[name]
	if s == nil {
		return nil
	}
	if !s.ranked {
		h.t.Fatalf("topotest: series %s is not ranked (set Sample.Ranked); read it with Series", name)
	}
	out := make([]Rank, 0, len(s.buckets))
	for b, v := range s.buckets {
		out = append(out, Rank{Bucket: b, Value: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Bucket > out[j].Bucket
	})
	return out
}

// TTL returns how long a series lives after its last change: the TTL, in
// whole seconds, of the last sample with a TTL that moved it; 0 for a
// series without one, or none.
func (h *Harness) TTL(name string) time.Duration {
	if s := h.metrics.series[name]; s != nil {
		return s.ttl
	}
	return 0
}
