package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/processors"
)

// fakeProcessor is a processor's state, as a test sets it.
type fakeProcessor struct {
	ready bool
	lag   map[string]int64
	stats processors.Stats
}

func (p *fakeProcessor) Ready() bool             { return p.ready }
func (p *fakeProcessor) Lag() map[string]int64   { return p.lag }
func (p *fakeProcessor) Stats() processors.Stats { return p.stats }

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestStatus(t *testing.T) {
	f := newMetricsFixture(t, "dash_status")
	d, err := New(Config{Redis: f.rdb, KeyPrefix: f.prefix},
		Topology{Topology: shipping("shipping"), Processor: &fakeProcessor{ready: true, lag: map[string]int64{"shipping": 1},
			stats: processors.Stats{Changes: 10, Duplicates: 2, DeadLetters: 1}}},
		Topology{Topology: shipping("starting"), Processor: &fakeProcessor{}},
		Topology{Topology: shipping("unknown")})
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, d.Handler(), Path+"api/status")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET api/status: %s", res.Status)
	}
	var got statusBody
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	one, ten, two := int64(1), int64(10), int64(2)
	zero := int64(0)
	want := statusBody{Ready: false, Indexes: []string{}, Topologies: []topologyStatus{
		{Name: "shipping", Ready: &yes, Lag: map[string]int64{"shipping": 1}, Behind: &one, Changes: &ten, Duplicates: &two, DeadLetters: &one, Metrics: true},
		{Name: "starting", Ready: &no, Changes: &zero, Duplicates: &zero, DeadLetters: &zero, Metrics: true}, // no lag measured yet
		{Name: "unknown", Metrics: true},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("api/status:\n got %s\nwant %+v", body, want)
	}
}

func TestPageAndAssets(t *testing.T) {
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := d.Handler()
	for _, tt := range []struct {
		path, contentType, contains string
	}{
		{Path, "text/html", `<script src="assets/app.js"`},
		{Path + "assets/app.js", "text/javascript", "new EventSource(\"api/events\")"},
		{Path + "assets/style.css", "text/css", ".card"},
		{Path + "api/charts", "application/json", `{"charts":[]}`},
	} {
		res, body := get(t, h, tt.path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.contentType) || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s: %s, %s, want %s with %q", tt.path, res.Status, res.Header.Get("Content-Type"), tt.contentType, tt.contains)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q lets the page load from elsewhere", tt.path, csp)
		}
	}
	// Nothing on the page comes from another host.
	for _, asset := range []string{"index.html", "app.js", "style.css"} {
		b, err := assets.ReadFile("assets/" + asset)
		if err != nil {
			t.Fatal(err)
		}
		for _, remote := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", ""), remote) {
				t.Errorf("%s refers to %q", asset, remote)
			}
		}
	}
	if res, _ := get(t, h, "/dashboard"); res.StatusCode != http.StatusFound || res.Header.Get("Location") != Path {
		t.Errorf("GET /dashboard: %s to %q, want a redirect to %s", res.Status, res.Header.Get("Location"), Path)
	}
	if res, body := get(t, h, Path+"api/search?index=orders&q=x"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "no search index") {
		t.Errorf("search without an index: %s %s", res.Status, body)
	}
}
