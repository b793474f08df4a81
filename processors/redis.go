package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
)

// applyScript applies one change to the metrics at most once, atomically.
// Redis itself keeps, per row, the position of the last applied change and
// what that version of the row contributed; a change moves every series by
// the difference between the row's new and stored contributions. A change at
// or before the stored position is ignored, so redelivery and replay change
// nothing, and no state outside Redis can drift from it. A bucket that falls
// to zero is removed.
//
// KEYS[1] the rows hash: field = row identity, value = {"p": position, "s": samples}
// ARGV[1] row identity   ARGV[2] position (change.Position.String)
// ARGV[3] the new samples, JSON [[series key, bucket, value, "h" or "z", ttl seconds], ...]
// ARGV[4] the notification channel
var applyScript = redis.NewScript(`
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local old = {}
if stored then
  local st = cjson.decode(stored)
  if st.p >= ARGV[2] then
    return 0
  end
  old = st.s
end
local new = cjson.decode(ARGV[3])
local cells, order = {}, {}
local function add(s, sign)
  local id = s[1] .. '\0' .. s[2]
  if cells[id] == nil then
    cells[id] = {s[1], s[2], 0, s[4] or 'h', s[5] or 0}
    table.insert(order, id)
  end
  cells[id][3] = cells[id][3] + sign * s[3]
  if sign > 0 then
    cells[id][5] = s[5] or 0
  end
end
for _, s in ipairs(old) do add(s, -1) end
for _, s in ipairs(new) do add(s, 1) end
local deltas = {}
for _, id in ipairs(order) do
  local c = cells[id]
  if c[3] ~= 0 then
    local delta = string.format('%d', c[3])
    if c[4] == 'z' then
      if tonumber(redis.call('ZINCRBY', c[1], delta, c[2])) == 0 then
        redis.call('ZREM', c[1], c[2])
      end
    elseif redis.call('HINCRBY', c[1], c[2], delta) == 0 then
      redis.call('HDEL', c[1], c[2])
    end
    if c[5] > 0 then
      redis.call('EXPIRE', c[1], c[5])
    end
    table.insert(deltas, {c[1], c[2], c[3]})
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({p = ARGV[2], s = new}))
if #deltas > 0 then
  redis.call('PUBLISH', ARGV[4], cjson.encode({row = ARGV[1], position = ARGV[2], deltas = deltas}))
end
return 1
`)

// RedisMetrics keeps metric series in Redis hashes, one hash per series named
// <prefix>:<topology>:<series>, one field per bucket, and applies each change
// idempotently (see [RedisMetrics.Apply]). It is safe for concurrent use.
type RedisMetrics struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisMetrics returns a sink writing keys under prefix (e.g. "cdcflow").
func NewRedisMetrics(client redis.UniversalClient, prefix string) *RedisMetrics {
	return &RedisMetrics{client: client, prefix: prefix}
}

// SeriesKey returns the Redis key of a topology's series.
func (m *RedisMetrics) SeriesKey(topology, series string) string {
	return m.prefix + ":" + topology + ":" + series
}

// Channel returns the pub/sub channel that announces a topology's updates.
// Each message is JSON: {"row": ..., "position": ..., "deltas": [[series key,
// bucket, delta], ...]}.
func (m *RedisMetrics) Channel(topology string) string {
	return m.prefix + ":" + topology + ":updates"
}

// Apply records that the row identified by row, at position pos, now
// contributes samples (nil for a deleted row), moving each series by the
// difference to what the row contributed before. It reports false, and
// changes nothing, when Redis already reflects pos or a later change of the
// row.
func (m *RedisMetrics) Apply(ctx context.Context, topology, row string, pos change.Position, samples []topologies.Sample) (bool, error) {
	cells := make([][5]any, 0, len(samples))
	for _, s := range samples {
		kind := "h"
		if s.Ranked {
			kind = "z"
		}
		cells = append(cells, [5]any{m.SeriesKey(topology, s.Series), s.Bucket, s.Value, kind, int64(s.TTL.Seconds())})
	}
	encoded, err := json.Marshal(cells)
	if err != nil {
		return false, err
	}
	keys := []string{m.prefix + ":" + topology + ":rows"}
	n, err := applyScript.Run(ctx, m.client, keys, row, pos.String(), encoded, m.Channel(topology)).Int()
	if err != nil {
		return false, fmt.Errorf("apply metrics of %s at %s in Redis: %w", row, pos, err)
	}
	return n == 1, nil
}

// Ranking reads a ranked series, highest value first.
func (m *RedisMetrics) Ranking(ctx context.Context, topology, series string) ([]redis.Z, error) {
	z, err := m.client.ZRevRangeWithScores(ctx, m.SeriesKey(topology, series), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read ranking %s: %w", series, err)
	}
	return z, nil
}

// Series reads a whole series: bucket → value.
func (m *RedisMetrics) Series(ctx context.Context, topology, series string) (map[string]int64, error) {
	raw, err := m.client.HGetAll(ctx, m.SeriesKey(topology, series)).Result()
	if err != nil {
		return nil, fmt.Errorf("read series %s: %w", series, err)
	}
	out := make(map[string]int64, len(raw))
	for k, v := range raw {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("series %s bucket %s holds %q, not an integer", series, k, v)
		}
		if n != 0 {
			out[k] = n
		}
	}
	return out, nil
}
