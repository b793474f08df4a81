package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/redis/go-redis/v9"
)

// Path is where [Dashboard.Handler] serves the page; its API is under
// Path + "api/".
const Path = "/dashboard/"

// Processor is a topology's running processor as the dashboard shows it:
// whether it caught up, how far behind its inputs it is, what it did.
// *processors.Processor is one. The dashboard calls these methods from its
// HTTP handlers, concurrently with the processor's Run.
type Processor interface {
	Ready() bool
	Lag() map[string]int64
	Stats() processors.Stats
}

// Topology is a topology the binary runs, with its processor.
type Topology struct {
	Topology *topologies.Topology
	// Processor runs it; nil shows no state for it.
	Processor Processor
}

// Config configures a [Dashboard]. Redis is required when a topology keeps
// metrics, Elasticsearch when one keeps a search index.
type Config struct {
	// Redis holds the metrics, as processors/redismetrics keeps them.
	Redis redis.UniversalClient
	// KeyPrefix prefixes every Redis key (processors.Config.KeyPrefix).
	// Default "cdcflow".
	KeyPrefix string
	// Elasticsearch holds the search indexes the page searches.
	Elasticsearch *elasticsearch.Client
	// Logger receives the dashboard's log lines. Default: discard.
	Logger *slog.Logger
}

// Dashboard serves a page that shows a binary's topologies live: their
// metric series as charts and rankings, updated through Server-Sent Events
// as the processors apply changes; each processor's readiness and lag; and
// a search box over their search indexes.
type Dashboard struct {
	cfg     Config
	topos   []Topology
	indexes []string // searchable, in topology order
	metrics *metricsSource
	stream  *stream
	mux     *http.ServeMux
}

//go:embed assets
var assets embed.FS

// New validates cfg against what topos keep, reporting every problem at
// once, and returns the dashboard of topos. It connects to nothing: Run
// subscribes to Redis.
func New(cfg Config, topos ...Topology) (*Dashboard, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "cdcflow"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, topos: topos, mux: http.NewServeMux()}
	var errs []error
	var withMetrics []string
	for i, t := range topos {
		if t.Topology == nil {
			errs = append(errs, fmt.Errorf("topology %d is nil", i))
			continue
		}
		sinks := engine.SinksOf(t.Topology.Engine())
		if sinks.Redis {
			withMetrics = append(withMetrics, t.Topology.Name)
			if cfg.Redis == nil {
				errs = append(errs, fmt.Errorf("Config.Redis is nil: topology %s keeps metrics in Redis", t.Topology.Name))
			}
		}
		for _, ix := range sinks.Indexes {
			if cfg.Elasticsearch == nil {
				errs = append(errs, fmt.Errorf("Config.Elasticsearch is nil: topology %s keeps the search index %s", t.Topology.Name, ix.Name))
			}
			if !slices.Contains(d.indexes, ix.Name) {
				d.indexes = append(d.indexes, ix.Name)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(withMetrics) > 0 {
		d.metrics = &metricsSource{rdb: cfg.Redis, store: redismetrics.New(cfg.Redis, cfg.KeyPrefix)}
	}
	d.stream = newStream(d.metrics, withMetrics, cfg.Logger)

	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	d.mux.Handle("GET "+Path+"{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	}))
	d.mux.Handle("GET "+Path+"assets/", http.StripPrefix(Path+"assets/", http.FileServerFS(static)))
	d.mux.HandleFunc("GET "+Path+"api/status", d.status)
	d.mux.HandleFunc("GET "+Path+"api/charts", d.charts)
	d.mux.Handle("GET "+Path+"api/events", d.stream)
	d.mux.HandleFunc("GET "+Path+"api/search", d.search)
	d.mux.Handle("GET "+Path[:len(Path)-1], http.RedirectHandler(Path, http.StatusFound))
	return d, nil
}

// Handler serves the page at [Path], its scripts and styles (embedded in
// the binary: the page loads nothing from elsewhere), and its API:
//
//	GET /dashboard/api/status        each topology's readiness, lag and counters, as JSON
//	GET /dashboard/api/charts        every chart, read from Redis, as JSON
//	GET /dashboard/api/events        Server-Sent Events: "snapshot" (every chart), then "charts" (those that changed)
//	GET /dashboard/api/search?index=&q=   a search of one of the topologies' indexes, through the binary
//
// The event stream needs Run to be running. It is safe for concurrent use.
func (d *Dashboard) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the page needs comes from the binary itself.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		d.mux.ServeHTTP(w, r)
	})
}

// Run keeps the page's charts live until ctx ends: it holds one Redis
// subscription to the update channels of every topology with metrics (see
// redismetrics.Store.Channel), reads the charts a notification touches
// again, and fans the ones that changed out to every browser on the event
// stream. When ctx ends it closes the event streams and returns nil. Redis
// failing does not end it: it retries, and reads every chart again once
// Redis answers. Call it once.
func (d *Dashboard) Run(ctx context.Context) error { return d.stream.run(ctx) }

// topologyStatus is a topology's entry of GET api/status.
type topologyStatus struct {
	Name string `json:"name"`
	// Ready and the counters are absent when no processor is known.
	Ready *bool `json:"ready,omitempty"`
	// Lag is, by consumer group, how many records of its inputs the
	// group has not committed yet (transaction markers count); Behind is
	// their sum. Both absent before the processor measured them.
	Lag         map[string]int64 `json:"lag,omitempty"`
	Behind      *int64           `json:"behind,omitempty"`
	Changes     *int64           `json:"changes,omitempty"`
	Duplicates  *int64           `json:"duplicates,omitempty"`
	DeadLetters *int64           `json:"dead_letters,omitempty"`
	Metrics     bool             `json:"metrics"`
	Indexes     []string         `json:"indexes,omitempty"`
}

type statusBody struct {
	Ready      bool             `json:"ready"`
	Topologies []topologyStatus `json:"topologies"`
	// Indexes are the search indexes the page can search.
	Indexes []string `json:"indexes"`
	// Browsers is how many event streams are open.
	Browsers int64 `json:"browsers"`
}

func (d *Dashboard) status(w http.ResponseWriter, _ *http.Request) {
	body := statusBody{Ready: true, Indexes: append([]string{}, d.indexes...), Browsers: d.stream.subscribers.Load()}
	for _, t := range d.topos {
		sinks := engine.SinksOf(t.Topology.Engine())
		ts := topologyStatus{Name: t.Topology.Name, Metrics: sinks.Redis}
		for _, ix := range sinks.Indexes {
			ts.Indexes = append(ts.Indexes, ix.Name)
		}
		if p := t.Processor; p != nil {
			ready, stats := p.Ready(), p.Stats()
			body.Ready = body.Ready && ready
			ts.Ready, ts.Changes, ts.Duplicates, ts.DeadLetters = &ready, &stats.Changes, &stats.Duplicates, &stats.DeadLetters
			if lag := p.Lag(); lag != nil {
				var behind int64
				for _, n := range lag {
					behind += n
				}
				ts.Lag, ts.Behind = lag, &behind
			}
		}
		body.Topologies = append(body.Topologies, ts)
	}
	writeJSON(w, http.StatusOK, body)
}

// charts answers every chart, read from Redis now.
func (d *Dashboard) charts(w http.ResponseWriter, r *http.Request) {
	charts := []Chart{}
	if d.metrics != nil {
		for _, topology := range d.stream.topologies {
			refs, err := d.metrics.discover(r.Context(), topology)
			if err != nil {
				writeError(w, http.StatusBadGateway, err)
				return
			}
			byChart := map[string][]seriesRef{}
			for _, ref := range refs {
				byChart[ref.chartID()] = append(byChart[ref.chartID()], ref)
			}
			for _, id := range slices.Sorted(maps.Keys(byChart)) {
				c, kept, err := d.metrics.chart(r.Context(), byChart[id])
				if err != nil {
					writeError(w, http.StatusBadGateway, err)
					return
				}
				if len(kept) > 0 {
					charts = append(charts, c)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, update{Charts: charts})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
