package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TestRunDemo runs the README's quick-start command, `cdcflow run --demo`,
// as a user would: against PostgreSQL and Redis, with the in-process Kafka and
// schema registry. The demo's orders must become metric updates in its output,
// and Redis must then hold what SQL says about public.orders.
func TestRunDemo(t *testing.T) {
	dsn, redisAddr := testenv.PGDSN(t), testenv.RedisAddr(t)
	bin := filepath.Join(t.TempDir(), "cdcflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stem := fmt.Sprintf("demo_%d", rand.IntN(1_000_000_000))
	db, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := context.Background()
		db.Exec(bg, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
		db.Close(bg)
	})

	cmd := exec.Command(bin, "run", "--demo", "--slot", stem, "--publication", stem, "--redis-prefix", stem, "--metrics-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CDCFLOW_PG_DSN="+dsn, "CDCFLOW_REDIS_ADDR="+redisAddr,
		"CDCFLOW_KAFKA_BROKERS=", "CDCFLOW_REGISTRY_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	updates := 0
	timeout := time.After(90 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("cdcflow exited early:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if strings.Contains(l, "metric update") {
				updates++
			}
			done = strings.Contains(l, "demo: done")
		case <-timeout:
			t.Fatalf("no 'demo: done' within 90s:\n%s", strings.Join(log, "\n"))
		}
	}
	// The demo inserts 42.50 and 10.00, raises the second to 15.00 and
	// deletes it; the snapshot brought in what the table held before. Redis
	// must say what SQL says.
	want := map[string]map[string]string{"orders_per_day": {}, "revenue_cents_per_day": {}}
	rows, err := db.Query(context.Background(), `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
		count(*)::text, sum(amount * 100)::bigint::text FROM public.orders GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var day, n, cents string
		if err := rows.Scan(&day, &n, &cents); err != nil {
			t.Fatal(err)
		}
		want["orders_per_day"][day], want["revenue_cents_per_day"][day] = n, cents
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	today := time.Now().UTC().Format(time.DateOnly)
	if want["orders_per_day"][today] == "" {
		t.Fatalf("the demo left no order today: %v", want)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]map[string]string{}
		for series := range want {
			m, _ := rdb.HGetAll(context.Background(), stem+":order-metrics:"+series).Result()
			for k, v := range m {
				if v == "0" {
					delete(m, k)
				}
			}
			got[series] = m
		}
		if reflect.DeepEqual(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis has %v, SQL says %v; output:\n%s", got, want, strings.Join(log, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The metrics endpoint shows what capture published.
	var metricsURL string
	for _, l := range log {
		if _, url, ok := strings.Cut(l, `msg="serving metrics" url=`); ok {
			metricsURL = strings.Fields(url)[0]
		}
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("GET the metrics at %q: %v", metricsURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`cdcflow_capture_events_total{op="c",slot="` + stem + `",table="public.orders"} 2`, "cdcflow_capture_lag_bytes", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics do not show %s", want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		log = append(log, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cdcflow did not exit cleanly on SIGINT: %v", err)
	}
	if updates < 3 {
		t.Errorf("saw %d metric updates, want one per demo step:\n%s", updates, strings.Join(log, "\n"))
	}
	for _, l := range log {
		if strings.Contains(l, "cdcflow:cdcflow@") || strings.Contains(l, ":cdcflow@") {
			t.Errorf("a log line shows the password: %s", l)
		}
	}
}
