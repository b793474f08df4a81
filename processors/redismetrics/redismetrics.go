// Package redismetrics keeps a topology's metrics in Redis and applies each
// change to them at most once: a Lua script stores, per row, the position of
// the last applied change and what that version of the row contributed,
// moves every series by the difference and refuses a change at or before
// the stored position, atomically.
package redismetrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
// A change of a table at or before the table's last truncate (truncateScript)
// is ignored too: the truncate removed its row.
//
// KEYS[1] the rows hash: field = row identity, value = {"p": position, "s": samples}
// KEYS[2] the truncates hash: field = table (input topic), value = position of its last truncate
// ARGV[1] row identity   ARGV[2] position (change.Position.String)
// ARGV[3] the new samples, JSON [[series key, bucket, value, "h" or "z", ttl seconds], ...]
// ARGV[4] the notification channel   ARGV[5] the row's table (input topic)
var applyScript = redis.NewScript(cellsLua + `
local truncated = redis.call('HGET', KEYS[2], ARGV[5])
if truncated and truncated >= ARGV[2] then
  return 0
end
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
for _, s in ipairs(old) do add(s, -1) end
for _, s in ipairs(new) do add(s, 1) end
local deltas = move()
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({p = ARGV[2], s = new}))
if #deltas > 0 then
  redis.call('PUBLISH', ARGV[4], cjson.encode({row = ARGV[1], position = ARGV[2], deltas = deltas}))
end
return 1
`)

// cellsLua sums samples per series and bucket (add, +1 for a sample the
// row contributes now, -1 for one it contributed) and moves each series by
// the sums (move): a bucket that falls to zero is removed, a series whose
// sample has a TTL gets it; it returns the deltas, [[key, bucket, delta]].
const cellsLua = `
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
local function move()
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
  return deltas
end
`

// Store keeps metric series in Redis hashes, one hash per series named
// <prefix>:<topology>:<series>, one field per bucket (a sorted set for a
// ranked series), and applies each change idempotently (see [Store.Apply]).
// It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	loaded sync.Map // script hash → true: the scripts ApplyBatch and ApplyWindowsBatch loaded
}

// New returns a store writing keys under prefix (e.g. "cdcflow").
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix}
}

// SeriesKey returns the Redis key of a topology's series.
func (m *Store) SeriesKey(topology, series string) string {
	return m.prefix + ":" + topology + ":" + series
}

// Channel returns the pub/sub channel that announces a topology's updates.
// Each message is JSON: {"row": ..., "position": ..., "deltas": [[series key,
// bucket, delta], ...]}.
func (m *Store) Channel(topology string) string {
	return m.prefix + ":" + topology + ":updates"
}

// Apply records that the row identified by row, at position pos, now
// contributes samples (nil for a deleted row), moving each series by the
// difference to what the row contributed before. It reports false, and
// changes nothing, when Redis already reflects pos or a later change of the
// row.
func (m *Store) Apply(ctx context.Context, topology, row string, pos change.Position, samples []topologies.Sample) (bool, error) {
	encoded, err := m.encodeSamples(topology, samples)
	if err != nil {
		return false, err
	}
	table, _, _ := strings.Cut(row, "|")
	n, err := applyScript.Run(ctx, m.client, m.stateKeys(topology), row, pos.String(), encoded, m.Channel(topology), table).Int()
	if err != nil {
		return false, fmt.Errorf("apply metrics of %s at %s in Redis: %w", row, pos, err)
	}
	return n == 1, nil
}

// stateKeys are the keys of what the store keeps of a topology's rows: the
// rows hash and the truncates hash.
func (m *Store) stateKeys(topology string) []string {
	return []string{m.prefix + ":" + topology + ":rows", m.prefix + ":" + topology + ":truncates"}
}

// truncateScript applies a truncate of a table to the rows of it that
// Redis holds, a batch of them at a time: each row whose last applied
// change came before the truncate stops contributing, and its state goes;
// a row changed after the truncate (its change delivered first, from
// another partition) stays. The truncate's position is stored as the
// table's, so that a change of the table before it, delivered later, is
// ignored (applyScript).
//
// KEYS[1] the rows hash   KEYS[2] the truncates hash
// ARGV[1] table (input topic)   ARGV[2] position   ARGV[3] the notification channel
// ARGV[4...] the identities of rows of the table
var truncateScript = redis.NewScript(cellsLua + `
local truncated = redis.call('HGET', KEYS[2], ARGV[1])
if not truncated or truncated < ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
local removed = 0
for i = 4, #ARGV do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored then
    local st = cjson.decode(stored)
    if st.p < ARGV[2] then
      for _, s in ipairs(st.s) do add(s, -1) end
      redis.call('HDEL', KEYS[1], ARGV[i])
      removed = removed + 1
    end
  end
end
local deltas = move()
if #deltas > 0 then
  redis.call('PUBLISH', ARGV[3], cjson.encode({row = ARGV[1] .. '|', position = ARGV[2], deltas = deltas}))
end
return removed
`)

// Truncate applies a truncate of table (the input topic whose rows Apply
// named "<table>|...") at position pos: every row of the table whose last
// applied change came before pos stops contributing to the series and is
// forgotten, and a change of the table at or before pos applied later is
// ignored, as its row was truncated. It returns the number of rows removed;
// a truncate applied already removes none. Rows are read in batches, each
// applied atomically; a truncate cut short is completed by applying it
// again.
func (m *Store) Truncate(ctx context.Context, topology, table string, pos change.Position) (int, error) {
	keys := m.stateKeys(topology)
	removed := 0
	flush := func(rows []string) error {
		args := append([]any{table, pos.String(), m.Channel(topology)}, toAny(rows)...)
		n, err := truncateScript.Run(ctx, m.client, keys, args...).Int()
		if err != nil {
			return fmt.Errorf("truncate metrics of %s at %s in Redis: %w", table, pos, err)
		}
		removed += n
		return nil
	}
	if err := flush(nil); err != nil { // the table's truncate position first
		return 0, err
	}
	var cursor uint64
	for {
		pairs, next, err := m.client.HScan(ctx, keys[0], cursor, GlobEscape(table)+"|*", 500).Result()
		if err != nil {
			return removed, fmt.Errorf("list rows of %s in Redis: %w", table, err)
		}
		var fields []string
		for i := 0; i+1 < len(pairs); i += 2 { // field, value, field, value, ...
			fields = append(fields, pairs[i])
		}
		if len(fields) > 0 {
			if err := flush(fields); err != nil {
				return removed, err
			}
		}
		if cursor = next; cursor == 0 {
			return removed, nil
		}
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// GlobEscape escapes the characters of a Redis glob pattern (SCAN's and
// HSCAN's MATCH) in s, so that s matches only itself.
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Ranking reads a ranked series, highest value first.
func (m *Store) Ranking(ctx context.Context, topology, series string) ([]redis.Z, error) {
	z, err := m.client.ZRevRangeWithScores(ctx, m.SeriesKey(topology, series), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read ranking %s: %w", series, err)
	}
	return z, nil
}

// Series reads a whole series: bucket → value.
func (m *Store) Series(ctx context.Context, topology, series string) (map[string]int64, error) {
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
