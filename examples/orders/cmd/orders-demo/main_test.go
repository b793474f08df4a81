package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TestRunDemo runs the README's quick-start command, `orders-demo --demo`,
// as a user would: against PostgreSQL, Redis and Elasticsearch, with the
// in-process Kafka and schema registry, and the query API on a free port. The
// demo's rows must become metric updates in its output; then Redis, the
// query API and the search index must hold what SQL says about the demo
// tables (which earlier runs share, so the test compares with SQL, not with
// fixed numbers).
func TestRunDemo(t *testing.T) {
	dsn, redisAddr, esURL := testenv.PGDSN(t), testenv.RedisAddr(t), testenv.ESURL(t)
	bin := filepath.Join(t.TempDir(), "orders-demo")
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
		testenv.DropSlot(bg, db, stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
		db.Close(bg)
		if req, err := http.NewRequest(http.MethodDelete, esURL+"/"+stem, nil); err == nil {
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}
	})

	httpAddr := testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--demo", "--slot", stem, "--publication", stem, "--redis-prefix", stem,
		"--metrics-addr", "127.0.0.1:0", "--es-url", esURL, "--search-index", stem, "--http-addr", httpAddr)
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
	var done string // the demo's last line
	updates := 0
	timeout := time.After(90 * time.Second)
	for done == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("cdcflow exited early:\n%s", strings.Join(log, "\n"))
			}
			log = append(log, l)
			if strings.Contains(l, "metric update") {
				updates++
			}
			if strings.Contains(l, "demo: done") {
				done = l
			}
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
	// The query API answers the demo's orders as SQL says, and the search
	// index holds every order's summary as SQL says.
	summaries := sqlSummaries(t, db)
	first, deleted := logAttr(done, "order"), logAttr(done, "deleted_order")
	if summaries[first].CustomerName != "Ada Lovelace" || summaries[first].Status != "shipped" || summaries[deleted].OrderID != 0 {
		t.Fatalf("SQL says order %s is %+v, order %s %+v: not what the demo wrote", first, summaries[first], deleted, summaries[deleted])
	}
	api := logAttr(logLine(t, log, `msg=serving`, "component=http"), "url")
	checkSummaryAPI(t, api, first, deleted, summaries[first])
	checkSearchIndex(t, esURL, stem, func() map[string]orders.OrderSummary { return sqlSummaries(t, db) })
	t.Logf("the API answers order %s as SQL does (customer %q); index %s holds the %d summaries SQL makes",
		first, summaries[first].CustomerName, stem, len(sqlSummaries(t, db)))
	for _, topology := range []string{"order-metrics", "order-events", "order-summaries", "order-projections"} {
		logLine(t, log, `msg="processor caught up"`, "topology="+topology)
	}
	logLine(t, log, `msg="order event" type=OrderShipped order=`+first)
	logLine(t, log, `msg="customer lifetime value"`, "lifetime_value_cents=")

	// The metrics endpoint shows what capture published.
	metricsURL := logAttr(logLine(t, log, `msg="serving metrics"`), "url")
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("GET the metrics at %q: %v", metricsURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"cdcflow_capture_lag_bytes", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics do not show %s", want)
		}
	}
	// The demo's two inserts at least: other sessions may write to the
	// demo's table public.orders meanwhile.
	creates := regexp.MustCompile(`cdcflow_capture_events_total\{op="c",slot="` + stem + `",table="public.orders"\} (\d+)`).FindStringSubmatch(string(body))
	if creates == nil {
		t.Errorf("the metrics show no creates of public.orders:\n%s", body)
	} else if n, _ := strconv.Atoi(creates[1]); n < 2 {
		t.Errorf("the metrics show %d creates of public.orders, want the demo's 2 at least", n)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		log = append(log, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("orders-demo did not exit cleanly on SIGINT: %v", err)
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

// logLine returns the first line of log that holds every one of parts.
func logLine(t *testing.T, log []string, parts ...string) string {
	t.Helper()
	for _, l := range log {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			return l
		}
	}
	t.Fatalf("no log line with %q:\n%s", parts, strings.Join(log, "\n"))
	return ""
}

// logAttr returns the value of the unquoted attribute key of a log line.
func logAttr(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// sqlSummaries returns the order summaries SQL says public's tables make,
// by order id.
func sqlSummaries(t *testing.T, db *pgx.Conn) map[string]orders.OrderSummary {
	t.Helper()
	out, err := orders.SummariesFromSQL(context.Background(), db, "public")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSummaryAPI checks that the query API at api answers the summary of
// order as want, with the customer's name, and 404 for the deleted order.
func checkSummaryAPI(t *testing.T, api, order, deleted string, want orders.OrderSummary) {
	t.Helper()
	get := func(id string) (int, []byte) {
		res, err := http.Get(api + "/read-models/summary/" + id)
		if err != nil {
			t.Fatalf("GET %s/read-models/summary/%s: %v", api, id, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, body
	}
	var got orders.OrderSummary
	waitUntil(t, 30*time.Second, func() string {
		code, body := get(order)
		got = orders.OrderSummary{}
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("GET /read-models/summary/%s: %v: %s", order, err, body)
			}
			got.CreatedAt = got.CreatedAt.UTC()
			if got == want {
				return ""
			}
		}
		return fmt.Sprintf("GET /read-models/summary/%s answers %d %s, SQL says %+v", order, code, body, want)
	})
	if code, body := get(deleted); code != http.StatusNotFound {
		t.Errorf("GET /read-models/summary/%s of the deleted order answers %d %s, want 404", deleted, code, body)
	}
}

// checkSearchIndex checks that the Elasticsearch index holds what sql says
// (asked again on every try, should another test write to the tables): one
// document per order, with the order's id.
func checkSearchIndex(t *testing.T, esURL, index string, sql func() map[string]orders.OrderSummary) {
	t.Helper()
	waitUntil(t, 30*time.Second, func() string {
		res, err := http.Post(esURL+"/"+index+"/_refresh", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		res, err = http.Get(esURL + "/" + index + "/_search?size=10000")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var found struct {
			Hits struct {
				Hits []struct {
					ID     string              `json:"_id"`
					Source orders.OrderSummary `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			return fmt.Sprintf("search %s: %s %s", index, res.Status, body)
		}
		if err := json.Unmarshal(body, &found); err != nil {
			t.Fatalf("search %s: %v: %s", index, err, body)
		}
		got := map[string]orders.OrderSummary{}
		for _, h := range found.Hits.Hits {
			h.Source.CreatedAt = h.Source.CreatedAt.UTC()
			got[h.ID] = h.Source
		}
		want := sql()
		if reflect.DeepEqual(got, want) {
			return ""
		}
		return fmt.Sprintf("index %s holds %d documents %+v,\nSQL says %d summaries %+v", index, len(got), got, len(want), want)
	})
}

// waitUntil calls check until it returns "" or d passes; then it fails with
// what check last said.
func waitUntil(t *testing.T, d time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDemoOnEmbeddedDefaults runs the demo as a newcomer would on a machine
// with nothing configured: no PostgreSQL and no Redis answer at the
// addresses given, so it starts throwaway ones, with Kafka and the registry
// in-process and the load generator on; the order summaries the load
// generator makes are served, /readyz turns 200, and Ctrl-C stops it
// cleanly (and deletes the throwaway cluster).
func TestDemoOnEmbeddedDefaults(t *testing.T) {
	testenv.Integration(t)
	bin := filepath.Join(t.TempDir(), "orders-demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, nowhere := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cmd := exec.Command(bin, "--rate", "20", "--http-addr", httpAddr,
		"--pg-dsn", "postgres://cdcflow@"+nowhere+"/cdcflow?sslmode=disable", "--redis-addr", nowhere)
	cmd.Env = append(os.Environ(), "CDCFLOW_KAFKA_BROKERS=", "CDCFLOW_REGISTRY_URL=", "CDCFLOW_ES_URL=")
	var out testenv.Output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	started := time.Now()
	get := func(path string) int {
		res, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitUntil(t, 120*time.Second, func() string {
		select {
		case err := <-done:
			t.Fatalf("the demo exited (%v):\n%s", err, out.String())
		default:
		}
		if get("/readyz") == http.StatusOK {
			for id := range 30 { // the load generator deletes some orders again
				if get(fmt.Sprintf("/read-models/summary/%d", id+1)) == http.StatusOK {
					return ""
				}
			}
		}
		if time.Since(started) > 115*time.Second { // the goroutines, to see where it hangs
			cmd.Process.Signal(syscall.SIGQUIT)
			time.Sleep(2 * time.Second)
		}
		return "the demo did not serve an order's summary, ready, within 120s:\n" + out.String()
	})
	// The dashboard it names serves the page and the metrics' charts.
	if code := get("/dashboard/"); code != http.StatusOK {
		t.Errorf("GET /dashboard/ = %d, want 200", code)
	}
	waitUntil(t, 30*time.Second, func() string {
		res, err := http.Get("http://" + httpAddr + "/dashboard/api/charts")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(body), orders.OrdersPerDay) {
			return fmt.Sprintf("GET /dashboard/api/charts has no %s chart: %d %s", orders.OrdersPerDay, res.StatusCode, body)
		}
		return ""
	})
	for _, want := range []string{"started a throwaway PostgreSQL cluster", "started a throwaway redis-server", "load generator running", "dashboard: http://" + httpAddr + "/dashboard/"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the demo did not exit cleanly on SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not stop within 60s of SIGINT")
	}
}

// TestQuickstart runs the README's first command, scripts/quickstart, as a
// newcomer does (with a slot, publication and Redis prefix of its own, to
// run beside the other tests): it brings up PostgreSQL and Redis with
// scripts/services, runs the demo, prints the dashboard's URL, and the
// dashboard shows the orders metrics; Ctrl-C stops it with status 0.
func TestQuickstart(t *testing.T) {
	dsn := testenv.PGDSN(t)
	stem := fmt.Sprintf("quickstart_%d", rand.IntN(1_000_000_000))
	t.Cleanup(func() {
		bg := context.Background()
		db, err := pgx.Connect(bg, dsn)
		if err != nil {
			return
		}
		defer db.Close(bg)
		testenv.DropSlot(bg, db, stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
	})
	httpAddr := testenv.FreeAddr(t)
	cmd := exec.Command("../../../../scripts/quickstart", "--http-addr", httpAddr,
		"--slot", stem, "--publication", stem, "--redis-prefix", stem)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C goes to the group
	var out testenv.Output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	url := "http://" + httpAddr + "/dashboard/"
	waitUntil(t, 5*time.Minute, func() string { // it builds the demo first
		select {
		case err := <-done:
			t.Fatalf("quickstart exited (%v):\n%s", err, out.String())
		default:
		}
		if !strings.Contains(out.String(), "dashboard: "+url) {
			return "quickstart did not print the dashboard's URL within 5 minutes:\n" + out.String()
		}
		res, err := http.Get(url + "api/charts")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(body), orders.OrdersPerDay) {
			return fmt.Sprintf("the dashboard has no %s chart: %d %s", orders.OrdersPerDay, res.StatusCode, body)
		}
		return ""
	})
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("quickstart did not exit cleanly on Ctrl-C: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("quickstart did not stop within 60s of Ctrl-C:\n%s", out.String())
	}
}
