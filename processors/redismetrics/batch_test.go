package redismetrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestBatchesRecoverScriptsRedisLost runs the metrics and the windowed
// batches of one Store in turn, as two processors writing at once do,
// against a Redis whose script cache is flushed before each round (a fresh
// or restarted Redis): a batch that finds its script gone fails once with
// errNoScript and applies the next time, whatever the other batches did
// in between. With one "loaded" flag for both scripts, the metrics batch
// loading its script marked the windowed one loaded too, and on a fresh
// Redis the windowed batch failed every time.
func TestBatchesRecoverScriptsRedisLost(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("scripts-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	store := New(rdb, prefix)
	node := &engine.Windowed{Input: "shop.public.orders", RowType: "order",
		Windows: engine.Windows{Size: time.Minute, Hop: time.Minute, Grace: time.Minute, Retain: time.Hour}}
	commit := time.Date(2026, 12, 2, 10, 0, 30, 0, time.UTC).UnixMilli()

	metrics := func(row string, pos change.Position) error {
		applied, err := store.ApplyBatch(ctx, "t", []Change{{Row: row, Pos: pos,
			Samples: []engine.Sample{{Series: "orders", Bucket: "all", Value: 1}}}})
		if err == nil && !applied[0] {
			err = fmt.Errorf("change of %s not applied", row)
		}
		return err
	}
	windowed := func(row string, pos change.Position) error {
		res, err := store.ApplyWindowsBatch(ctx, "t", node, []WindowChange{{Row: row, Pos: pos, CommitMs: commit,
			Created: true, Samples: []engine.WindowSample{{Series: "orders_w", Value: 1}}}})
		if err == nil && !res[0].Applied {
			err = fmt.Errorf("windowed change of %s not applied: %+v", row, res[0])
		}
		return err
	}
	batches := []func(string, change.Position) error{metrics, windowed}
	applied := make([]int, len(batches))
	n := 0
	for round := 1; round <= 3; round++ {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		failed := make([]int, len(batches))
		for step := range 6 {
			k := step % len(batches)
			n++
			err := batches[k](fmt.Sprintf("orders|%d", n), change.Position{CommitLSN: change.LSN(n)})
			if errors.Is(err, errNoScript) {
				if failed[k]++; failed[k] > 1 {
					t.Fatalf("round %d: batch %d found its script gone twice: %v", round, k, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("round %d: batch %d: %v", round, k, err)
			}
			applied[k]++
		}
	}
	got, err := rdb.HGet(ctx, store.SeriesKey("t", "orders"), "all").Int()
	if err != nil || got != applied[0] {
		t.Fatalf("orders/all = %d, %v; want %d, the metrics batches applied", got, err, applied[0])
	}
	windows, err := store.Windows(ctx, "t", "orders_w", time.UnixMilli(commit).Add(-time.Hour), time.UnixMilli(commit).Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 1 || windows[0].Value != int64(applied[1]) {
		t.Fatalf("windows = %+v; want one window holding the %d windowed changes applied", windows, applied[1])
	}
}
