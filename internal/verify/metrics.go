package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
)

// A cell is a bucket of a series.
type cell struct{ series, bucket string }

func (c cell) String() string { return c.series + "[" + c.bucket + "]" }

// cells are what a row, or the sum of rows, contributes: a value per cell,
// none zero.
type cells map[cell]int64

func (cs cells) add(c cell, v int64) {
	if cs[c] += v; cs[c] == 0 {
		delete(cs, c)
	}
}

func (cs cells) String() string {
	keys := slices.SortedFunc(maps.Keys(cs), func(a, b cell) int {
		return strings.Compare(a.String(), b.String())
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String() + "=" + strconv.FormatInt(cs[k], 10)
	}
	return strings.Join(parts, ", ")
}

// metrics compares the Redis metrics of n with what the current rows of its
// table contribute: every bucket of every series of the topology, and what
// the rows hash records each row contributes (it names the rows whose
// contribution is wrong). A series with a TTL that Redis no longer holds,
// although the rows hash says the processor applied changes to it, expired
// (its period is over) and is left out.
func (c *collector) metrics(ctx context.Context, n *engine.Metrics) (Result, error) {
	store := redismetrics.New(c.sinks.Redis, c.sinks.RedisPrefix)
	prefix := store.SeriesKey(c.topology, "")
	rowsKey := store.SeriesKey(c.topology, "rows") // the processor's rows hash
	r := Result{Node: n.Describe(), Sink: "Redis " + prefix + "*"}
	rows, err := c.src.Rows(ctx, n.Input)
	if err != nil {
		return r, err
	}
	want, wantRows := cells{}, map[string]cells{}
	ranked, expiring := map[string]bool{}, map[string]bool{}
	for _, row := range rows {
		samples, err := n.Measure(row.Row)
		if err != nil {
			return r, fmt.Errorf("%s: row %s: %w", n.Describe(), engine.ChildKey(row.Key), err)
		}
		mine := cells{}
		for _, s := range samples {
			want.add(cell{s.Series, s.Bucket}, s.Value)
			mine.add(cell{s.Series, s.Bucket}, s.Value)
			ranked[s.Series] = ranked[s.Series] || s.Ranked
			expiring[s.Series] = expiring[s.Series] || s.TTL > 0
		}
		wantRows[engine.RowIdentity(n.Input, row.Key)] = mine
	}

	// The series: those the rows make, and those Redis holds.
	made, names := map[string]bool{}, map[string]bool{}
	for c := range want {
		made[c.series], names[c.series] = true, true
	}
	keys, err := inspect.RedisKeys(ctx, c.sinks.Redis, prefix)
	if err != nil {
		return r, err
	}
	windowed, err := windowedSeries(ctx, c, prefix)
	if err != nil {
		return r, err
	}
	for _, k := range keys {
		name := strings.TrimPrefix(k, prefix)
		if k != rowsKey && !windowed[name] && !engine.IsStateName(name) {
			names[name] = true
		}
	}
	gotRows, err := c.rowsHash(ctx, rowsKey, prefix)
	if err != nil {
		return r, err
	}
	applied := map[string]bool{} // the series the processor applied changes to
	for _, cs := range gotRows {
		for c := range cs {
			applied[c.series] = true
		}
	}
	expired := 0
	for _, name := range slices.Sorted(maps.Keys(names)) {
		typ, err := c.sinks.Redis.Type(ctx, prefix+name).Result()
		if err != nil {
			return r, fmt.Errorf("read Redis key %s: %w", prefix+name, err)
		}
		got := cells{}
		switch typ {
		case "none":
			if expiring[name] && applied[name] {
				expired++
				continue
			}
		case "hash":
			buckets, err := store.Series(ctx, c.topology, name)
			if err != nil {
				return r, err
			}
			for b, v := range buckets {
				got.add(cell{name, b}, v)
			}
		case "zset":
			ranking, err := store.Ranking(ctx, c.topology, name)
			if err != nil {
				return r, err
			}
			for _, z := range ranking {
				got.add(cell{name, fmt.Sprint(z.Member)}, int64(z.Score))
			}
		default:
			r.Differences = append(r.Differences, Difference{Key: name, Source: "a series", Sink: "a Redis " + typ})
			continue
		}
		if kind := seriesType(ranked[name]); made[name] && typ != "none" && typ != kind {
			r.Differences = append(r.Differences, Difference{Key: name, Source: "a Redis " + kind, Sink: "a Redis " + typ})
		}
		buckets := map[string]bool{}
		for c := range want {
			if c.series == name {
				buckets[c.bucket] = true
			}
		}
		for c := range got {
			buckets[c.bucket] = true
		}
		for _, b := range slices.Sorted(maps.Keys(buckets)) {
			k := cell{name, b}
			r.Compared++
			if want[k] != got[k] {
				r.Differences = append(r.Differences, Difference{Key: k.String(), Source: valueText(want, k), Sink: valueText(got, k)})
			}
		}
	}
	if expired > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d series with a TTL expired in Redis (their period is over): not compared", expired))
	}

	for _, id := range union(wantRows, gotRows) {
		r.Compared++
		if w, g := differing(wantRows[id], gotRows[id]); len(w)+len(g) > 0 {
			r.Differences = append(r.Differences, Difference{Key: "row " + id, Source: w.String(), Sink: g.String()})
		}
	}
	return r, nil
}

// windowedSeries returns the names under prefix that a Windowed node keeps
// (the series the windowed hash describes, and its own state): they are not
// the Metrics nodes' series.
func windowedSeries(ctx context.Context, c *collector, prefix string) (map[string]bool, error) {
	out := map[string]bool{}
	fields, err := c.sinks.Redis.HKeys(ctx, prefix+engine.WindowedKeyName).Result()
	if err != nil {
		return nil, fmt.Errorf("read Redis hash %s: %w", prefix+engine.WindowedKeyName, err)
	}
	for _, f := range fields {
		if name, ok := strings.CutPrefix(f, engine.WindowedSeriesField); ok {
			out[name] = true
		}
	}
	return out, nil
}

// differing returns the cells in which w and g differ, with the value each
// has (a cell one lacks is left out of it).
func differing(w, g cells) (cells, cells) {
	dw, dg := cells{}, cells{}
	for _, m := range []cells{w, g} {
		for c := range m {
			if w[c] == g[c] {
				continue
			}
			if v, ok := w[c]; ok {
				dw[c] = v
			}
			if v, ok := g[c]; ok {
				dg[c] = v
			}
		}
	}
	return dw, dg
}

// rowsHash reads what the rows hash key records each row contributes, by
// row identity: {"p": position, "s": [[series key, bucket, value, kind,
// ttl], ...]} (an empty "s" is a JSON object, as Lua's cjson writes it).
func (c *collector) rowsHash(ctx context.Context, key, prefix string) (map[string]cells, error) {
	out := map[string]cells{}
	iter := c.sinks.Redis.HScan(ctx, key, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		id := iter.Val()
		if !iter.Next(ctx) {
			break
		}
		var stored struct {
			S json.RawMessage `json:"s"`
		}
		if err := json.Unmarshal([]byte(iter.Val()), &stored); err != nil {
			return nil, fmt.Errorf("Redis hash %s field %s: %w", key, id, err)
		}
		var samples []storedSample
		if len(stored.S) > 0 && stored.S[0] == '[' {
			var raw [][]json.RawMessage
			if err := json.Unmarshal(stored.S, &raw); err != nil {
				return nil, fmt.Errorf("Redis hash %s field %s: %w", key, id, err)
			}
			samples = make([]storedSample, len(raw))
			for i, s := range raw {
				if len(s) < 3 || json.Unmarshal(s[0], &samples[i].Series) != nil ||
					json.Unmarshal(s[1], &samples[i].Bucket) != nil || json.Unmarshal(s[2], &samples[i].Value) != nil {
					return nil, fmt.Errorf("Redis hash %s field %s: sample %d is not [series key, bucket, value, ...]", key, id, i)
				}
			}
		}
		mine := cells{}
		for _, s := range samples {
			v, err := s.Value.Int64()
			if err != nil { // cjson writes large integers in exponent form
				f, _ := s.Value.Float64()
				v = int64(f)
			}
			mine.add(cell{strings.TrimPrefix(s.Series, prefix), s.Bucket}, v)
		}
		out[id] = mine
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("read Redis hash %s: %w", key, err)
	}
	return out, nil
}

// storedSample is a sample as the rows hash records it.
type storedSample struct {
	Series, Bucket string
	Value          json.Number
}

// seriesType is the type of Redis key a series is kept in.
func seriesType(ranked bool) string {
	if ranked {
		return "zset"
	}
	return "hash"
}

func valueText(cs cells, c cell) string {
	if v, ok := cs[c]; ok {
		return strconv.FormatInt(v, 10)
	}
	return ""
}
