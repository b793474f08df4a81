package orders_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/redis/go-redis/v9"
)

// TestMetricsChangeSurvivesShutdownDuringRedisRetry stops a processor while
// it retries a change Redis does not take (nothing listens at its address),
// then runs the same group against the real Redis: the change was left
// uncommitted, so the metrics still get it.
func TestMetricsChangeSurvivesShutdownDuringRedisRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrders(ctx, t)
	group := c.stem + "-metrics"
	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount, created_at) VALUES (1, 7, 12.34, $1)", time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC))

	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	var logs testenv.Output
	proc, err := processors.NewProcessor(orders.Metrics(c.stem, c.stem), processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Redis: dead, KeyPrefix: c.stem, Group: group,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(pctx) }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs.String(), "redis failed; retrying"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the processor never tried Redis; its log:\n%s", logs.String())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("processor stopped with %v; a shutdown is not an error", err)
	}
	if n := proc.Stats().Changes; n != 0 {
		t.Fatalf("the processor counted %d changes it could not apply", n)
	}

	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	proc, err = processors.NewProcessor(orders.Metrics(c.stem, c.stem), processors.Config{
		Brokers: c.brokers, Decoder: serde.NewDecoder(c.reg), Redis: rdb, KeyPrefix: c.stem, Group: group,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- proc.Run(ctx) }()
	want := sqlMetrics(t, ctx, c.db, c.table)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := redisMetrics(t, ctx, rdb, proc.Metrics())
		if reflect.DeepEqual(got, want) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("processor stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change left uncommitted at shutdown never reached Redis: got %v, want %v", got, want)
		}
	}
}
