package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// View is what a [Server] runs and waits for. Every *[Table] is one.
type View interface {
	// Topic names the table topic the view follows.
	Topic() string
	// Run follows the topic until ctx ends (nil) or the view fails.
	Run(ctx context.Context) error
	// Recovered reports whether the view has caught up with its topic.
	Recovered() bool
}

// ServerConfig configures a [Server].
type ServerConfig struct {
	// Addr is the address [Server.Run] listens on, e.g. ":8080".
	Addr string
	// Logger receives the server's log lines: views ready, failed requests
	// (status 500 and above, with the error). Default: discard.
	Logger *slog.Logger
	// Metrics registers the server's Prometheus metrics
	// (cdcflow_views_requests_total{route,code}, cdcflow_views_recovered{topic});
	// if it is also a prometheus.Gatherer, as a *prometheus.Registry is,
	// GET /metrics serves it. Nil: no metrics.
	Metrics prometheus.Registerer
	// ShutdownTimeout bounds how long the server waits for requests in
	// flight once its context ends. Default 10s.
	ShutdownTimeout time.Duration
}

// Server is an HTTP JSON API over views: it runs the views, serves the
// routes declared with [Server.Handle], and reports readiness.
//
//   - GET /readyz answers 200 once every view has recovered (caught up with
//     its table topic) and 503 before, with {"ready": bool, "views":
//     {topic: "recovered" | "recovering"}}.
//   - GET /healthz answers 200 while the server serves.
//   - GET /metrics serves [ServerConfig.Metrics] when it is a gatherer.
//   - A declared route answers 503 until every view has recovered, so that
//     no answer mixes caught-up and partial tables.
type Server struct {
	cfg      ServerConfig
	views    []View
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	running  atomic.Bool
}

// NewServer validates cfg and views and builds the server. It connects to
// nothing and listens nowhere until Run or Serve.
func NewServer(cfg ServerConfig, views ...View) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	var errs []error
	if len(views) == 0 {
		errs = append(errs, errors.New("views server: no views to serve"))
	}
	topics := map[string]bool{}
	for i, v := range views {
		switch {
		case v == nil:
			errs = append(errs, fmt.Errorf("views server: view %d is nil", i))
		case topics[v.Topic()]:
			errs = append(errs, fmt.Errorf("views server: two views of table %s; pass each table once", v.Topic()))
		default:
			topics[v.Topic()] = true
		}
	}
	if cfg.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("views server: negative shutdown timeout %s", cfg.ShutdownTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s := &Server{cfg: cfg, views: views, mux: http.NewServeMux()}
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if g, ok := cfg.Metrics.(prometheus.Gatherer); ok {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return s, nil
}

func (s *Server) registerMetrics() error {
	if s.cfg.Metrics == nil {
		return nil
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcflow_views_requests_total",
		Help: "Requests to the views API, by route pattern and status code.",
	}, []string{"route", "code"})
	cs := []prometheus.Collector{s.requests}
	for _, v := range s.views {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "cdcflow_views_recovered",
			Help:        "1 once the view has caught up with its table topic, 0 before.",
			ConstLabels: prometheus.Labels{"topic": v.Topic()},
		}, func() float64 {
			if v.Recovered() {
				return 1
			}
			return 0
		}))
	}
	for _, c := range cs {
		if err := s.cfg.Metrics.Register(c); err != nil {
			return fmt.Errorf("views server: register metrics: %w", err)
		}
	}
	return nil
}

// Handle serves route pattern, a net/http ServeMux pattern such as
// "GET /order-summaries/{id}", with h, usually a [Lookup], [FanOut] or
// [Query]. Until every view has recovered the route answers 503. Like
// ServeMux.Handle, it panics if pattern is invalid or conflicts with a
// route already declared (including /readyz, /healthz and /metrics).
// Declare every route before Run.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		if waiting := s.recovering(); len(waiting) > 0 {
			writeError(rec, fmt.Errorf("%s not caught up yet: %w", strings.Join(waiting, ", "), ErrNotReady))
		} else {
			h.ServeHTTP(rec, r)
		}
		if s.requests != nil {
			s.requests.WithLabelValues(pattern, strconv.Itoa(rec.status)).Inc()
		}
		if rec.status >= 500 && rec.status != http.StatusServiceUnavailable {
			s.cfg.Logger.Error("request failed", "route", pattern, "path", r.URL.Path, "status", rec.status, "error", rec.err)
		}
	}))
}

// Handler returns the server's routes, /readyz and /healthz included, for
// serving elsewhere (or from httptest). The views must run for the routes to
// answer anything but 503: use Run or Serve.
func (s *Server) Handler() http.Handler { return s.mux }

// recovering returns the topics of the views not recovered yet.
func (s *Server) recovering() []string {
	var topics []string
	for _, v := range s.views {
		if !v.Recovered() {
			topics = append(topics, v.Topic())
		}
	}
	return topics
}

// Ready reports whether every view has recovered.
func (s *Server) Ready() bool { return len(s.recovering()) == 0 }

// WaitReady blocks until every view has recovered, or ctx ends (ctx.Err()).
func (s *Server) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !s.Ready() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

type readiness struct {
	Ready bool              `json:"ready"`
	Views map[string]string `json:"views"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	body := readiness{Ready: true, Views: map[string]string{}}
	for _, v := range s.views {
		state := "recovered"
		if !v.Recovered() {
			state, body.Ready = "recovering", false
		}
		body.Views[v.Topic()] = state
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// Run listens on [ServerConfig.Addr] and serves there; see [Server.Serve].
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Addr == "" {
		return errors.New("views server: no address to listen on: set ServerConfig.Addr, e.g. \":8080\"")
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("views server: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve runs the views and serves HTTP on ln until ctx ends or a view fails,
// and closes ln. When ctx ends it stops accepting requests, waits up to
// [ServerConfig.ShutdownTimeout] for those in flight, then stops the views,
// and returns nil. When a view fails it shuts down the same way and returns
// the view's error. A server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.running.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("views server: Serve called twice")
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	// The views outlive the HTTP server, so that requests in flight at
	// shutdown are answered from them.
	viewCtx, stopViews := context.WithCancel(context.WithoutCancel(ctx))
	defer stopViews()
	g, gctx := errgroup.WithContext(ctx)
	for _, v := range s.views {
		g.Go(func() error { return v.Run(viewCtx) })
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("views server: serve HTTP on %s: %w", ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		defer stopViews()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			return fmt.Errorf("views server: shut down HTTP: %w", err)
		}
		return nil
	})
	s.cfg.Logger.Info("views server listening", "addr", ln.Addr().String())
	g.Go(func() error {
		start := time.Now()
		if s.WaitReady(gctx) == nil {
			s.cfg.Logger.Info("views ready", "views", len(s.views), "took", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	return g.Wait()
}

// recorder keeps the status a handler wrote, and the error behind it for the
// server's log.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
