package dashboard_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/dashboard"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"
)

// chromium returns the headless browser the tests drive: $CDCFLOW_CHROMIUM,
// else chromium on the PATH (scripts/chromium installs Debian's).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CDCFLOW_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("no chromium on the PATH: run scripts/chromium (it installs Debian's chromium), or set CDCFLOW_CHROMIUM to a Chromium's path")
	}
	return p
}

// A tab is a tab of a headless Chromium of the test's own, which lives
// until the test ends.
type tab struct {
	t   *testing.T
	ctx context.Context // the browser's: each step derives a bounded one
}

func openTab(t *testing.T) *tab {
	t.Helper()
	path := chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1200),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for as long as ctx lives
		t.Fatalf("start %s: %v", path, err)
	}
	return &tab{t: t, ctx: ctx}
}

// do runs actions, failing the test after 30s.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("chromium: %s: %v", what, err)
	}
}

// evaluate returns what the JavaScript expression js evaluates to on the
// page.
func evaluate[T any](b *tab, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("chromium: evaluate %.60s: %v", js, err)
	}
	return v
}

// screenshot saves a screenshot of the page as name in $TEST_ARTIFACTS,
// else in the test's artifact directory (go test -artifacts keeps it), and
// logs where.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = b.t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot of the dashboard: %s", path)
}

// markDocument marks the page's document, so that sameDocument tells
// whether it was reloaded since.
func (b *tab) markDocument() {
	b.t.Helper()
	b.do("mark the document", chromedp.Evaluate[chromedp.Void](`window.cdcflowTestMarker = "same document"`))
}

func (b *tab) sameDocument() bool {
	b.t.Helper()
	return evaluate[string](b, `String(window.cdcflowTestMarker || "")`) == "same document"
}

// pageNumbers is what the test reads off the page.
type pageNumbers struct {
	Orders      float64 `json:"orders"`  // orders per day, total
	Revenue     string  `json:"revenue"` // revenue per day, total, as shown
	PerMinute   float64 `json:"perMinute"`
	Paid        string  `json:"paid"` // the paid bucket of orders per status, as shown
	TopCustomer string  `json:"topCustomer"`
	Updates     string  `json:"updates"` // charts events applied
	Live        string  `json:"live"`    // the state of the live stream
	Ready       string  `json:"ready"`   // order-metrics' readiness
}

const readNumbers = `(() => {
	const q = (sel) => document.querySelector(sel);
	const chart = (id) => '[data-chart="order-metrics/' + id + '"]';
	const num = (sel) => { const e = q(sel); return e ? Number(e.dataset.value) : -1; };
	const text = (sel) => { const e = q(sel); return e ? e.textContent : ""; };
	const top = q(chart("top_customers_by_revenue_cents") + " li");
	const ready = q('tr[data-topology="order-metrics"] [data-ready]');
	return {
		orders: num(chart("orders_per_day") + " .total"),
		revenue: text(chart("revenue_cents_per_day") + " .total"),
		perMinute: num(chart("revenue_cents_per_minute") + " .total"),
		paid: text(chart("orders_per_status") + ' [data-bucket="paid"] .value'),
		topCustomer: top ? top.dataset.member : "",
		updates: q("#last-update").dataset.updates || "0",
		live: q("#live").dataset.state,
		ready: ready ? ready.dataset.ready : "",
	};
})()`

// TestDashboardLiveInChromium runs capture and a processor binary's runner
// (app.Run) with the orders example's metrics and search topologies on the
// real services, opens /dashboard/ in headless Chromium, commits orders in
// PostgreSQL and watches the page's numbers change without a reload; then
// searches the orders index from the page's search box. It saves a
// screenshot of the page ($TEST_ARTIFACTS, else the test's artifact
// directory: go test -artifacts keeps it).
func TestDashboardLiveInChromium(t *testing.T) {
	testenv.Integration(t)
	chromium(t)
	dsn, brokers, registryURL := testenv.PGDSN(t), testenv.KafkaBrokers(t), testenv.RegistryURL(t)
	redisAddr, esURL := testenv.RedisAddr(t), testenv.ESURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stem := fmt.Sprintf("dash_%d_%d", time.Now().Unix(), rand.IntN(1_000_000))
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + stem)
	exec(orders.CreateTable(stem))
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() {
		bg := context.Background()
		testenv.DropSlot(bg, db, stem)
		db.Exec(bg, "DROP PUBLICATION IF EXISTS "+stem)
		db.Exec(bg, "DROP SCHEMA "+stem+" CASCADE")
		db.Close(bg)
		iter := rdb.Scan(bg, 0, stem+":*", 1000).Iterator()
		for iter.Next(bg) {
			rdb.Del(bg, iter.Val())
		}
		rdb.Close()
		if req, err := http.NewRequest(http.MethodDelete, esURL+"/"+stem, nil); err == nil {
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}
	})
	// A backlog, there before anything runs: 72.49 in three orders of three
	// days.
	table := stem + ".orders"
	exec("INSERT INTO " + table + " (customer_id, amount, created_at) VALUES (1, 42.50, now() - interval '2 days'), " +
		"(2, 10.00, now() - interval '1 day 2 hours'), (1, 19.99, now() - interval '75 minutes')")

	reg, err := sr.NewClient(sr.URLs(registryURL))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := capture.New(capture.Config{DSN: dsn, Tables: []string{table}, Brokers: brokers, TopicPrefix: stem,
		Slot: stem, Publication: stem, StatusInterval: 200 * time.Millisecond}, serde.NewEncoder(reg, stem))
	if err != nil {
		t.Fatal(err)
	}
	captureDone := make(chan error, 1)
	go func() { captureDone <- cp.Run(ctx) }()

	addr := testenv.FreeAddr(t)
	f := app.Flags{
		Kafka:       app.KafkaFlags{Brokers: brokers},
		RegistryURL: registryURL, RedisAddr: redisAddr, RedisPrefix: stem, ESURL: esURL,
		TopicPrefix: stem, Schema: stem, Group: stem, HTTPAddr: addr, RetryTimeout: time.Minute,
	}
	metrics := func(src app.Source) *topologies.Topology { return orders.Metrics(src.Prefix, src.Schema) }
	search := func(src app.Source) *topologies.Topology { return orders.Search(src.Prefix, src.Schema, stem) }
	runDone := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { runDone <- app.Run(ctx, f, log, metrics, search) }()
	stopped := func() {
		t.Helper()
		select {
		case err := <-captureDone:
			t.Fatalf("capture stopped: %v", err)
		case err := <-runDone:
			t.Fatalf("the processor stopped: %v", err)
		default:
		}
	}
	page := "http://" + addr + "/dashboard/"
	waitFor(t, "the binary to serve "+page, 60*time.Second, stopped, func() bool {
		res, err := http.Get(page)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	b := openTab(t)
	var numbers pageNumbers
	waitPage := func(what string, cond func(pageNumbers) bool) {
		t.Helper()
		waitFor(t, what, 90*time.Second, stopped, func() bool {
			numbers = evaluate[pageNumbers](b, readNumbers)
			return cond(numbers)
		})
		t.Logf("page: %+v", numbers)
	}

	b.do("open "+page, chromedp.Navigate(page))
	waitPage("the backlog on the page", func(n pageNumbers) bool {
		return n.Orders == 3 && n.Revenue == "72.49" && n.TopCustomer == "1" && n.Live == "live"
	})
	b.markDocument()
	before := numbers.Updates

	// New orders, and a status change: the page follows without a reload.
	exec("INSERT INTO " + table + " (customer_id, amount) VALUES (77, 1000.00), (2, 5.25)")
	exec("UPDATE " + table + " SET status = 'paid' WHERE customer_id = 2 AND amount = 10.00")
	waitPage("the new orders on the page", func(n pageNumbers) bool {
		return n.Orders == 5 && n.Revenue == "1,077.74" && n.PerMinute == 107774 && n.Paid == "1" && n.TopCustomer == "77"
	})
	if !b.sameDocument() || numbers.Updates == before {
		t.Errorf("the page reloaded (%v) or got no live update: updates %s → %s", !b.sameDocument(), before, numbers.Updates)
	}
	waitPage("order-metrics caught up in the pipelines table", func(n pageNumbers) bool { return n.Ready == "true" })

	// The search box asks the binary, which asks Elasticsearch.
	waitFor(t, "customer 77's order in the search results", 60*time.Second, stopped, func() bool {
		b.do("search", chromedp.Evaluate[chromedp.Void](`document.querySelector("#search-q").value = ""`),
			chromedp.SendKeys(chromedp.CSS("#search-q"), "77"),
			chromedp.Sleep(700*time.Millisecond))
		hits := evaluate[string](b, `[...document.querySelectorAll("#search-results tbody tr")].map((r) => r.textContent).join("\n")`)
		return strings.Contains(hits, "1000.00")
	})
	b.screenshot("dashboard.png")

	// The binary stops cleanly with the page open, and the page says so.
	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("app.Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("app.Run still runs 30s after its context ended, with a page open")
	}
	waitFor(t, "the page to see the stream gone", 30*time.Second, func() {}, func() bool {
		return evaluate[pageNumbers](b, readNumbers).Live != "live"
	})
	if !b.sameDocument() {
		t.Error("the page reloaded")
	}
}

// waitFor polls cond until it holds, failing the test after timeout or as
// soon as check does.
func waitFor(t *testing.T, what string, timeout time.Duration, check func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		check()
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

type parcel struct{ Status string }

// TestPageReconnects ends the page's event stream by stopping the
// dashboard: the page says so and keeps retrying; once a dashboard serves
// again it starts from a snapshot that has what changed meanwhile, and
// follows changes live again, without a reload.
func TestPageReconnects(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	prefix := fmt.Sprintf("dash_page_%d", rand.IntN(1_000_000_000))
	t.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	store := redismetrics.New(rdb, prefix)
	var lsn change.LSN
	newParcel := func() {
		t.Helper()
		lsn++
		if _, err := store.Apply(ctx, "parcels", fmt.Sprintf("parcels|id=%d", lsn), change.Position{CommitLSN: lsn},
			[]topologies.Sample{{Series: "parcels_per_status", Bucket: "new", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	topo := topologies.New("parcels", topologies.Metrics(topologies.TableOf[parcel]("p", "s", "parcels"),
		func(p parcel) []topologies.Sample {
			return []topologies.Sample{{Series: "parcels_per_status", Bucket: p.Status, Value: 1}}
		}))

	var current atomic.Pointer[dashboard.Dashboard]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	// start serves a new dashboard; the function it returns stops it.
	start := func() func() {
		d, err := dashboard.New(dashboard.Config{Redis: rdb, KeyPrefix: prefix}, dashboard.Topology{Topology: topo})
		if err != nil {
			t.Fatal(err)
		}
		current.Store(d)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(rctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	const read = `(() => {
		const total = document.querySelector('[data-chart="parcels/parcels_per_status"] .total');
		return (total ? total.dataset.value : "none") + " " + document.querySelector("#live").dataset.state;
	})()`
	b := openTab(t)
	waitPage := func(want string) {
		t.Helper()
		var got string
		waitFor(t, "the page to show "+want, 30*time.Second, func() {}, func() bool {
			got = evaluate[string](b, read)
			return got == want
		})
	}

	stop := start()
	newParcel()
	b.do("open the page", chromedp.Navigate(srv.URL+dashboard.Path))
	waitPage("1 live")
	b.markDocument()

	stop() // the stream ends; reconnecting, the page is refused (503) until a dashboard runs again
	waitFor(t, "the page to see the stream gone", 30*time.Second, func() {}, func() bool {
		return !strings.HasSuffix(evaluate[string](b, read), " live")
	})
	newParcel()
	stop = start()
	defer func() { stop() }()
	waitPage("2 live")
	newParcel()
	waitPage("3 live")
	if !b.sameDocument() {
		t.Error("the page reloaded")
	}
}
