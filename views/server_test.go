package views_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
)

// ordersAPI is the server the tests query: order summaries by id, a
// customer's orders through the customer index, and two broken routes.
type ordersAPI struct {
	server    *views.Server
	summaries *views.Table[summary]
	customers *views.Table[CustomerOrders]
	log       *testenv.Output
}

func newOrdersAPI(t *testing.T, brokers []string, summaryTopic, customerTopic string, opts ...views.TableOption) *ordersAPI {
	t.Helper()
	summaries, err := views.NewTable[summary](brokers, goka.Table(summaryTopic), opts...)
	if err != nil {
		t.Fatal(err)
	}
	customers, err := views.NewTable[CustomerOrders](brokers, goka.Table(customerTopic), opts...)
	if err != nil {
		t.Fatal(err)
	}
	a := &ordersAPI{summaries: summaries, customers: customers, log: new(testenv.Output)}
	a.server, err = views.NewServer(views.ServerConfig{
		Logger:  slog.New(slog.NewTextHandler(a.log, nil)),
		Metrics: prometheus.NewRegistry(),
	}, summaries, customers)
	if err != nil {
		t.Fatal(err)
	}
	a.server.Handle("GET /order-summaries/{id}", views.Lookup(summaries, views.PathInt("id")))
	a.server.Handle("GET /customers/{id}/orders", views.FanOut(customers, views.PathInt("id"), CustomerOrders.Keys, summaries))
	a.server.Handle("GET /broken/{id}", views.Query(func(r *http.Request) (summary, error) {
		return summary{}, errors.New("disk on fire")
	}))
	a.server.Handle("GET /misdeclared/{order}", views.Lookup(summaries, views.PathInt("id")))
	return a
}

// start runs the API's server on a free port; stop ends its context and
// returns what Serve returned, failing the test if it takes 15s.
func (a *ordersAPI) start(t *testing.T) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.server.Serve(ctx, ln) }()
	return ln.Addr().String(), func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("Serve still running 15s after its context ended")
			return nil
		}
	}
}

// serve runs the API's server until the test ends, checks that it then
// returns nil, and returns its base URL.
func (a *ordersAPI) serve(t *testing.T) string {
	t.Helper()
	addr, stop := a.start(t)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	})
	return "http://" + addr
}

// get returns the status, the Retry-After header and the body of GET url.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), strings.TrimSpace(string(body))
}

type request struct {
	name, path string
	status     int
	body       string
}

func checkRequests(t *testing.T, base string, reqs []request) {
	t.Helper()
	for _, r := range reqs {
		status, _, body := get(t, base+r.path)
		if status != r.status || body != r.body {
			t.Errorf("%s: GET %s = %d %s\nwant %d %s", r.name, r.path, status, body, r.status, r.body)
		}
	}
}

func TestServerAnswers503UntilTheViewsRecovered(t *testing.T) {
	api := newOrdersAPI(t, nil, "summaries-table", "customers-table", views.WithTester(tester.New(t)))
	// The views do not run: nothing has recovered.
	srv := httptest.NewServer(api.server.Handler())
	defer srv.Close()

	checkRequests(t, srv.URL, []request{
		{"readiness", "/readyz", 503, `{"ready":false,"views":{"customers-table":"recovering","summaries-table":"recovering"}}`},
		{"liveness", "/healthz", 200, `{"status":"ok"}`},
		{"lookup", "/order-summaries/1", 503, `{"error":"summaries-table, customers-table not caught up yet: not ready"}`},
		{"fan-out", "/customers/1/orders", 503, `{"error":"summaries-table, customers-table not caught up yet: not ready"}`},
	})
	if _, retry, _ := get(t, srv.URL+"/order-summaries/1"); retry != "1" {
		t.Errorf("503 with Retry-After %q, want 1", retry)
	}
	if api.server.Ready() {
		t.Error("Ready before the views ran")
	}
}

func TestServerRoutes(t *testing.T) {
	tt := tester.New(t)
	api := newOrdersAPI(t, nil, "summaries-table", "customers-table", views.WithTester(tt))
	base := api.serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := api.server.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	tt.Consume("summaries-table", "1", summary{ID: 1, Customer: 7, Status: "paid", Total: "10.00"})
	tt.Consume("summaries-table", "2", summary{ID: 2, Customer: 7, Status: "new", Total: "2.50"})
	tt.Consume("summaries-table", "3", summary{ID: 3, Customer: 8, Status: "new", Total: "1.00"})
	// Order 9 is in the index but not (yet) a summary.
	tt.Consume("customers-table", "7", CustomerOrders{OrderIDs: []int64{2, 9, 1}})
	tt.Consume("customers-table", "8", CustomerOrders{})

	resp, err := http.Get(base + "/order-summaries/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	checkRequests(t, base, []request{
		{"ready", "/readyz", 200, `{"ready":true,"views":{"customers-table":"recovered","summaries-table":"recovered"}}`},
		{"lookup", "/order-summaries/1", 200, `{"id":1,"customer_id":7,"status":"paid","total":"10.00"}`},
		{"leading zeros", "/order-summaries/0002", 200, `{"id":2,"customer_id":7,"status":"new","total":"2.50"}`},
		{"missing key", "/order-summaries/4", 404, `{"error":"key \"4\" not found in summaries-table"}`},
		{"bad id", "/order-summaries/abc", 400, `{"error":"id \"abc\" is not a decimal integer"}`},
		{"id out of range", "/order-summaries/99999999999999999999", 400, `{"error":"id \"99999999999999999999\" is not a decimal integer"}`},
		{"fan-out in index order, missing left out", "/customers/7/orders", 200,
			`[{"id":2,"customer_id":7,"status":"new","total":"2.50"},{"id":1,"customer_id":7,"status":"paid","total":"10.00"}]`},
		{"fan-out of an empty index entry", "/customers/8/orders", 200, `[]`},
		{"fan-out of a missing customer", "/customers/9/orders", 404, `{"error":"key \"9\" not found in customers-table"}`},
		{"fan-out bad id", "/customers/x/orders", 400, `{"error":"id \"x\" is not a decimal integer"}`},
		{"internal error withheld", "/broken/1", 500, `{"error":"internal error"}`},
		{"route with the wrong wildcard", "/misdeclared/1", 500, `{"error":"internal error"}`},
	})
	if status, _, _ := get(t, base+"/nowhere"); status != 404 {
		t.Errorf("GET /nowhere = %d, want 404", status)
	}

	// Updates and deletes show through.
	tt.Consume("summaries-table", "1", summary{ID: 1, Customer: 7, Status: "shipped", Total: "10.00"})
	tt.Consume("summaries-table", "2", nil)
	checkRequests(t, base, []request{
		{"updated", "/order-summaries/1", 200, `{"id":1,"customer_id":7,"status":"shipped","total":"10.00"}`},
		{"deleted", "/order-summaries/2", 404, `{"error":"key \"2\" not found in summaries-table"}`},
		{"fan-out after the changes", "/customers/7/orders", 200, `[{"id":1,"customer_id":7,"status":"shipped","total":"10.00"}]`},
	})

	for _, want := range []string{`route="GET /broken/{id}"`, `error="disk on fire"`, `error="route \"GET /misdeclared/{order}\" has no path wildcard {id}"`} {
		if !strings.Contains(api.log.String(), want) {
			t.Errorf("log does not say %s:\n%s", want, api.log)
		}
	}
	_, _, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`cdcflow_views_recovered{topic="summaries-table"} 1`,
		`cdcflow_views_recovered{topic="customers-table"} 1`,
		`cdcflow_views_requests_total{code="200",route="GET /order-summaries/{id}"} 4`,
		`cdcflow_views_requests_total{code="404",route="GET /order-summaries/{id}"} 2`,
		`cdcflow_views_requests_total{code="400",route="GET /order-summaries/{id}"} 2`,
		`cdcflow_views_requests_total{code="500",route="GET /broken/{id}"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestServeShutsDownWhenItsContextEnds(t *testing.T) {
	api := newOrdersAPI(t, nil, "summaries-table", "customers-table", views.WithTester(tester.New(t)))
	entered, release := make(chan struct{}), make(chan struct{})
	api.server.Handle("GET /slow", views.Query(func(r *http.Request) (string, error) {
		close(entered)
		<-release
		return "answered", nil
	}))
	addr, stop := api.start(t)
	if err := api.server.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A request in flight when the context ends is answered.
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, strings.TrimSpace(string(body)), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if a := <-answered; a.err != nil || a.status != 200 || a.body != `"answered"` {
		t.Errorf("request in flight at shutdown: %d %s %v, want 200 \"answered\"", a.status, a.body, a.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}

	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("the listener still accepts connections")
	}
	if api.summaries.Recovered() || api.customers.Recovered() {
		t.Error("views still recovered after Serve returned")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := api.server.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "Serve called twice") {
		t.Errorf("second Serve = %v, want Serve called twice", err)
	}
}

func TestServeStopsWhenAViewFails(t *testing.T) {
	api := newOrdersAPI(t, []string{"127.0.0.1:1"}, "summaries-table", "customers-table")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = api.server.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "Kafka unreachable at [127.0.0.1:1]") {
		t.Fatalf("Serve = %v, want Kafka unreachable", err)
	}
}

func TestNewServerReportsEveryProblem(t *testing.T) {
	table, err := views.NewTable[summary](nil, "orders-table", views.WithTester(tester.New(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   views.ServerConfig
		views []views.View
		want  []string
	}{
		{"no views", views.ServerConfig{}, nil, []string{"views server: no views to serve"}},
		{"nil and twice", views.ServerConfig{ShutdownTimeout: -time.Second}, []views.View{table, nil, table}, []string{
			"views server: view 1 is nil",
			"views server: two views of table orders-table; pass each table once",
			"views server: negative shutdown timeout -1s",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := views.NewServer(tc.cfg, tc.views...)
			if err == nil {
				t.Fatal("NewServer succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewServer error\n%v\ndoes not say %q", err, w)
				}
			}
		})
	}

	s, err := views.NewServer(views.ServerConfig{}, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "set ServerConfig.Addr") {
		t.Errorf("Run without an address = %v", err)
	}
}
