package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// A processor binary started before capture has created its change topics
// (both deployed at once) waits for them, not ready, and processes the
// changes once capture runs.
func TestProcessorStartedBeforeCaptureWaitsForItsTopics(t *testing.T) {
	brokers, registryURL, redisAddr := testenv.KafkaBrokers(t), testenv.RegistryURL(t), testenv.RedisAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stem := fmt.Sprintf("early_%d", rand.IntN(1_000_000_000))

	addr := testenv.FreeAddr(t)
	f := app.Flags{
		Kafka:       app.KafkaFlags{Brokers: brokers},
		RegistryURL: registryURL, RedisAddr: redisAddr, RedisPrefix: stem, TopicPrefix: stem, Schema: stem,
		Group: stem, HTTPAddr: addr, RetryTimeout: time.Minute,
	}
	logs := &syncWriter{w: &strings.Builder{}}
	runDone := make(chan error, 1)
	go func() { runDone <- app.Run(ctx, f, slog.New(slog.NewTextHandler(logs, nil)), parcels) }()
	get := func(path string) (int, string) { return httpGet("http://" + addr + path) }
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(200 * time.Millisecond) {
			select {
			case err := <-runDone:
				t.Fatalf("waiting for %s, Run returned: %v\n%s", what, err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 90s; the log:\n%s", what, logs.String())
			}
		}
	}
	topic := stem + "." + stem + ".parcels"
	eventually("log line naming the missing change topic", func() bool {
		return strings.Contains(logs.String(), "waiting for a change topic") && strings.Contains(logs.String(), topic)
	})
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d while the change topic is missing, want 503", code)
	}
	time.Sleep(3 * time.Second) // it keeps waiting, it does not give up
	select {
	case err := <-runDone:
		t.Fatalf("Run returned while waiting for capture: %v", err)
	default:
	}

	src := startCapturedSource(ctx, t, stem, brokers, nil, "CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	for i := range 20 {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, $2)", i+1, []string{"new", "sent"}[i%2])
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	eventually("metrics, read model and readiness once capture runs", func() bool {
		m, _ := rdb.HGetAll(ctx, stem+":parcels:per_status").Result()
		ready, _ := get("/readyz")
		code, body := get("/read-models/parcel/7")
		return m["new"] == "10" && m["sent"] == "10" && ready == http.StatusOK && code == http.StatusOK && strings.Contains(body, `"status":"new"`)
	})
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-src.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}
