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

// applyScript applies one change's metric deltas at most once. It compares
// the change's position with the last position applied for the same row and
// does nothing unless the change is newer; otherwise it increments every
// series, stores the position and publishes a notification, all atomically.
//
// KEYS[1]   the hash of applied positions, field = row identity
// KEYS[2..] the series hashes, field = bucket
// ARGV[1]   the row identity   ARGV[2] the position (change.Position.String)
// ARGV[3]   the notification channel   ARGV[4] the notification payload
// ARGV[5..] bucket, delta pairs, one per series key
var applyScript = redis.NewScript(`
local applied = redis.call('HGET', KEYS[1], ARGV[1])
if applied and applied >= ARGV[2] then
  return 0
end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2 * i + 1], ARGV[2 * i + 2])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// RedisMetrics keeps metric series in Redis hashes, one hash per series named
// <prefix>:<topology>:<series>, one field per bucket. It applies each change
// idempotently through a script that checks and stores the row's position.
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
func (m *RedisMetrics) Channel(topology string) string {
	return m.prefix + ":" + topology + ":updates"
}

// Update is the payload published on [RedisMetrics.Channel] after each
// applied change.
type Update struct {
	Topology string              `json:"topology"`
	Row      string              `json:"row"`
	Position string              `json:"position"`
	Deltas   []topologies.Sample `json:"deltas"`
}

// Apply applies deltas for the change at pos to the row identified by row.
// It reports false when Redis already reflects pos or a later change of the
// row, in which case nothing changed.
func (m *RedisMetrics) Apply(ctx context.Context, topology, row string, pos change.Position, deltas []topologies.Sample) (bool, error) {
	keys := []string{m.prefix + ":" + topology + ":applied"}
	payload, err := json.Marshal(Update{Topology: topology, Row: row, Position: pos.String(), Deltas: deltas})
	if err != nil {
		return false, err
	}
	args := []any{row, pos.String(), m.Channel(topology), payload}
	for _, d := range deltas {
		keys = append(keys, m.SeriesKey(topology, d.Series))
		args = append(args, d.Bucket, strconv.FormatInt(d.Value, 10))
	}
	n, err := applyScript.Run(ctx, m.client, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("apply metrics of %s at %s in Redis: %w", row, pos, err)
	}
	return n == 1, nil
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
		out[k] = n
	}
	return out, nil
}
