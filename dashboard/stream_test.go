package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
)

type shipment struct {
	ID     int64
	Status string
}

// shipping is a user's metrics topology: shipments per status.
func shipping(name string) *topologies.Topology {
	return topologies.New(name, topologies.Metrics(topologies.TableOf[shipment]("p", "s", "shipments"),
		func(s shipment) []topologies.Sample {
			return []topologies.Sample{{Series: "shipments_per_status", Bucket: s.Status, Value: 1}}
		}))
}

// served is a dashboard running on the real Redis behind an HTTP server
// that counts the requests in progress.
type served struct {
	d      *Dashboard
	url    string
	active atomic.Int64 // requests being served
	stop   context.CancelFunc
	done   chan error // Run's result
}

func serve(t *testing.T, f *metricsFixture, rdb redis.UniversalClient, topos ...*topologies.Topology) *served {
	t.Helper()
	var ts []Topology
	for _, topo := range topos {
		ts = append(ts, Topology{Topology: topo})
	}
	d, err := New(Config{Redis: rdb, KeyPrefix: f.prefix}, ts...)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{d: d, done: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		d.Handler().ServeHTTP(w, r)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	s.url, s.stop = srv.URL, cancel
	go func() { s.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
	})
	return s
}

// A browser is an event stream as a browser's EventSource reads it: the
// charts it has, after the snapshot and every update since.
type browser struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	charts map[string]Chart
	events []string
	ended  chan struct{} // the server ended the stream
}

func openBrowser(t *testing.T, url string) *browser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+Path+"api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET api/events: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	b := &browser{cancel: cancel, charts: map[string]Chart{}, ended: make(chan struct{})}
	t.Cleanup(cancel)
	go func() {
		defer close(b.ended)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && event != "":
				b.apply(t, event, data)
				event, data = "", ""
			}
		}
	}()
	return b
}

func (b *browser) apply(t *testing.T, event, data string) {
	var u update
	if err := json.Unmarshal([]byte(data), &u); err != nil {
		t.Errorf("event %s: %v: %s", event, err, data)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, event)
	if event == "snapshot" {
		clear(b.charts)
	}
	for _, c := range u.Charts {
		if c.Removed {
			delete(b.charts, c.ID)
		} else {
			b.charts[c.ID] = c
		}
	}
}

// points returns the points of chart id, nil when the browser has no such
// chart.
func (b *browser) points(id string) []Point {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.charts[id]; ok {
		return c.Points
	}
	return nil
}

// waitFor waits until chart id has points want (nil: no such chart).
func (b *browser) waitFor(t *testing.T, id string, want []Point) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !reflect.DeepEqual(b.points(id), want) {
		if time.Now().After(deadline) {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("chart %s: the browser has %v after events %v, want %v", id, b.charts[id].Points, b.events, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamFansOutToEveryBrowser(t *testing.T) {
	f := newMetricsFixture(t, "dash_fanout")
	f.apply(t, "shipping", "shipments|id=1", topologies.Sample{Series: "shipments_per_status", Bucket: "new", Value: 1})
	s := serve(t, f, f.rdb, shipping("shipping"))
	const chart = "shipping/shipments_per_status"

	a, b := openBrowser(t, s.url), openBrowser(t, s.url)
	a.waitFor(t, chart, []Point{{"new", 1}})
	b.waitFor(t, chart, []Point{{"new", 1}})
	waitUntil(t, "two browsers connected", func() bool { return s.d.stream.subscribers.Load() == 2 })

	f.apply(t, "shipping", "shipments|id=2", topologies.Sample{Series: "shipments_per_status", Bucket: "new", Value: 1})
	f.apply(t, "shipping", "shipments|id=1", topologies.Sample{Series: "shipments_per_status", Bucket: "sent", Value: 1})
	a.waitFor(t, chart, []Point{{"new", 1}, {"sent", 1}})
	b.waitFor(t, chart, []Point{{"new", 1}, {"sent", 1}})

	// A browser going away ends its handler and leaves the stream.
	a.cancel()
	<-a.ended
	waitUntil(t, "the gone browser's handler to return", func() bool {
		return s.active.Load() == 1 && s.d.stream.subscribers.Load() == 1
	})
	f.apply(t, "shipping", "shipments|id=3", topologies.Sample{Series: "shipments_per_status", Bucket: "lost", Value: 1})
	b.waitFor(t, chart, []Point{{"lost", 1}, {"new", 1}, {"sent", 1}})

	// A browser that connects now starts from a snapshot of it all.
	c := openBrowser(t, s.url)
	c.waitFor(t, chart, []Point{{"lost", 1}, {"new", 1}, {"sent", 1}})
	if c.events[0] != "snapshot" {
		t.Errorf("a new browser's first event is %s, want snapshot", c.events[0])
	}

	// Stopping the dashboard ends every stream and every handler.
	s.stop()
	if err := <-s.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	for _, br := range []*browser{b, c} {
		select {
		case <-br.ended:
		case <-time.After(5 * time.Second):
			t.Fatal("a stream still runs after Run returned")
		}
	}
	waitUntil(t, "every handler to return", func() bool { return s.active.Load() == 0 })
	res, err := http.Get(s.url + Path + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("api/events once stopped: %s, want 503", res.Status)
	}
}

func TestStreamDropsABrowserThatFallsBehind(t *testing.T) {
	f := newMetricsFixture(t, "dash_slow")
	s := serve(t, f, f.rdb, shipping("shipping"))
	slow := &subscriber{ch: make(chan []byte, 2)} // and never read
	s.d.stream.register <- slow
	waitUntil(t, "the slow browser subscribed", func() bool { return s.d.stream.subscribers.Load() == 1 })
	n := 0
	for s.d.stream.subscribers.Load() > 0 {
		if n == 50 {
			t.Fatalf("a browser that reads nothing is still subscribed after %d updates", n)
		}
		n++
		f.apply(t, "shipping", fmt.Sprintf("shipments|id=%d", n), topologies.Sample{Series: "shipments_per_status", Bucket: "new", Value: 1})
		time.Sleep(2 * flushInterval)
	}
	for range slow.ch { // the stream closed it
	}
	// The others keep going.
	b := openBrowser(t, s.url)
	b.waitFor(t, "shipping/shipments_per_status", []Point{{"new", int64(n)}})
}

// TestStreamRereadsWhatTheSubscriptionMissed cuts the dashboard's Redis
// subscription: once it has reconnected, the dashboard reads every chart
// again, so a change whose notification was lost still reaches the page.
func TestStreamRereadsWhatTheSubscriptionMissed(t *testing.T) {
	defer func(d time.Duration) { rescanInterval = d }(rescanInterval)
	rescanInterval = time.Hour // only the reconnection may bring the change
	f := newMetricsFixture(t, "dash_reconnect")
	name := fmt.Sprintf("dashtest-%d", rand.IntN(1_000_000_000))
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), ClientName: name})
	defer rdb.Close()
	f.apply(t, "shipping", "shipments|id=1", topologies.Sample{Series: "shipments_per_status", Bucket: "new", Value: 1})
	s := serve(t, f, rdb, shipping("shipping"))
	b := openBrowser(t, s.url)
	const chart = "shipping/shipments_per_status"
	b.waitFor(t, chart, []Point{{"new", 1}})

	// A change without its notification, as if published while the
	// subscription was down.
	if err := f.rdb.HIncrBy(context.Background(), f.store.SeriesKey("shipping", "shipments_per_status"), "new", 4).Err(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitUntil(t, "the dashboard's subscription killed", func() bool {
		list, err := f.rdb.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		killed := false
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " cmd=subscribe") {
				id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
				killed = f.rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err() == nil || killed
			}
		}
		return killed
	})
	b.waitFor(t, chart, []Point{{"new", 5}})
	// And it is subscribed again.
	f.apply(t, "shipping", "shipments|id=2", topologies.Sample{Series: "shipments_per_status", Bucket: "sent", Value: 1})
	b.waitFor(t, chart, []Point{{"new", 5}, {"sent", 1}})
}

func TestStreamRemovesExpiredSeries(t *testing.T) {
	defer func(d time.Duration) { rescanInterval = d }(rescanInterval)
	rescanInterval = 300 * time.Millisecond
	f := newMetricsFixture(t, "dash_expiry")
	s := serve(t, f, f.rdb, shipping("shipping"))
	b := openBrowser(t, s.url)
	f.apply(t, "shipping", "shipments|id=1",
		topologies.Sample{Series: "shipments_per_minute:2026-11-21T21", Bucket: "04", Value: 1, TTL: time.Second},
		topologies.Sample{Series: "shipments_per_minute:2026-11-21T22", Bucket: "00", Value: 2, TTL: time.Hour})
	const chart = "shipping/shipments_per_minute"
	b.waitFor(t, chart, []Point{{"2026-11-21T21:04", 1}, {"2026-11-21T22:00", 2}})
	b.waitFor(t, chart, []Point{{"2026-11-21T22:00", 2}}) // the first hour expired
	f.rdb.Del(context.Background(), f.store.SeriesKey("shipping", "shipments_per_minute:2026-11-21T22"))
	b.waitFor(t, chart, nil)
}

func TestNewNamesWhatIsMissing(t *testing.T) {
	search := topologies.New("search", topologies.Index(topologies.TableOf[shipment]("p", "s", "shipments"), "shipments",
		func(s shipment) (string, any) { return fmt.Sprint(s.ID), s }))
	_, err := New(Config{}, Topology{Topology: shipping("shipping")}, Topology{Topology: search}, Topology{})
	for _, want := range []string{"Config.Redis is nil: topology shipping", "Config.Elasticsearch is nil: topology search keeps the search index shipments", "topology 2 is nil"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want it to say %q", err, want)
		}
	}
}
