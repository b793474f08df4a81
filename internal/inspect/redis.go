package inspect

import (
	"context"
	"fmt"
	"slices"

	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/redis/go-redis/v9"
)

// RedisKeys returns the Redis keys that start with prefix, sorted.
func RedisKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, redismetrics.GlobEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list the Redis keys %s*: %w", prefix, err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil // SCAN may return a key twice
}
