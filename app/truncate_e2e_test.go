package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestTruncateReachesTheSinks runs capture with truncates published
// (skipped.operations none) and a processor binary's runner over the real
// Kafka, Redis and Elasticsearch: after TRUNCATE the table's rows no longer
// count in the metrics and its documents are gone from the search index,
// and the rows inserted afterwards count and are indexed.
func TestTruncateReachesTheSinks(t *testing.T) {
	registryURL, redisAddr, esURL := testenv.RegistryURL(t), testenv.RedisAddr(t), testenv.ESURL(t)
	brokers := testenv.KafkaBrokers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := newCapturedSourceWith(ctx, t, "truncate", brokers, nil,
		func(c *capture.Config) { c.SkippedOperations = []change.Op{} },
		"CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	stem := src.stem
	index := strings.ReplaceAll(stem, "_", "-") + "-parcels"
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, esURL+"/"+index, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	for i := range 20 {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, $2)", i+1, []string{"new", "sent"}[i%2])
	}
	f := app.Flags{
		Kafka:       app.KafkaFlags{Brokers: brokers},
		RegistryURL: registryURL, RedisAddr: redisAddr, RedisPrefix: stem, ESURL: esURL, TopicPrefix: stem, Schema: stem,
		Group: stem, RetryTimeout: time.Minute,
	}
	var logs strings.Builder
	runDone := make(chan error, 1)
	go func() {
		runDone <- app.Run(ctx, f, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)), parcelsIndexed(index))
	}()

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	wait := func(what string, cond func(m map[string]string, docs int) bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			m, _ := rdb.HGetAll(ctx, stem+":parcels:per_status").Result()
			docs := countDocs(esURL, index)
			if cond(m, docs) {
				t.Logf("%s: metrics %v, %d documents", what, m, docs)
				return
			}
			select {
			case err := <-runDone:
				t.Fatalf("Run: %v\n%s", err, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: metrics %v, %d documents after 90s", what, m, docs)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	wait("before the truncate", func(m map[string]string, docs int) bool { return m["new"] == "10" && m["sent"] == "10" && docs == 20 })
	src.exec(t, "TRUNCATE "+stem+".parcels")
	src.exec(t, "INSERT INTO "+stem+".parcels VALUES (21, 'new'), (22, 'new'), (3, 'sent')")
	wait("after the truncate", func(m map[string]string, docs int) bool {
		return len(m) == 2 && m["new"] == "2" && m["sent"] == "1" && docs == 3
	})
	if !strings.Contains(logs.String(), "table truncated") {
		t.Errorf("the log does not say the table was truncated:\n%s", logs.String())
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-src.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}
