package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/dashboard"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// server serves the binary's HTTP routes: health, readiness, metrics, the
// read models and projections of the topologies through views of their
// tables, and the dashboard.
type server struct {
	procs  []*running
	tables []servedTable
	views  *views.Server // nil without read models and projections
	dash   *dashboard.Dashboard
	kafka  kafkaconn.Config
	sarama *sarama.Config
	mux    *http.ServeMux
	log    *slog.Logger
}

func newServer(procs []*running, kafka kafkaconn.Config, sc *sarama.Config, metrics *prometheus.Registry, dash dashboard.Config, log *slog.Logger) (*server, error) {
	s := &server{procs: procs, kafka: kafka, sarama: sc, mux: http.NewServeMux(), log: log}
	topos := make([]dashboard.Topology, len(procs))
	for i, r := range procs {
		topos[i] = dashboard.Topology{Topology: r.topo, Processor: r.proc}
	}
	dash.Logger = log
	var err error
	if s.dash, err = dashboard.New(dash, topos...); err != nil {
		return nil, err
	}
	s.mux.Handle(dashboard.Path, s.dash.Handler())
	type route struct {
		pattern string
		table   servedTable
	}
	var routes []route
	for _, r := range procs {
		c := &tableCollector{group: r.group}
		for _, n := range r.topo.Engine() {
			n.Run(c)
		}
		for _, t := range c.tables {
			var table servedTable
			var err error
			if t.consistent != "" {
				table, err = views.ConsistentDocuments(kafka.Brokers, r.group, t.consistent, views.WithSaramaConfig(sc), views.WithLogger(log))
			} else {
				table, err = views.NewTable[json.RawMessage](kafka.Brokers, goka.Table(t.topic),
					views.WithCodec(t.codec), views.WithSaramaConfig(sc), views.WithLogger(log))
			}
			if err != nil {
				return nil, err
			}
			s.tables = append(s.tables, table)
			routes = append(routes, route{t.route, table})
		}
	}
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if len(s.tables) == 0 {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
		return s, nil
	}
	vs := make([]views.View, len(s.tables))
	for i, t := range s.tables {
		vs[i] = t
	}
	if s.views, err = views.NewServer(views.ServerConfig{Metrics: metrics, Logger: log}, vs...); err != nil {
		return nil, err
	}
	for _, r := range routes {
		s.views.Handle(r.pattern, views.Lookup(r.table, views.PathString("key")))
	}
	s.mux.Handle("/", s.views.Handler())
	return s, nil
}

// A servedTable is a view of a read model's documents or a projection's
// states, as JSON.
type servedTable interface {
	views.View
	views.Getter[json.RawMessage]
}

// A viewedTable is a table the server serves: a read model's documents or
// a projection's states, as JSON; a transaction-consistent read model's
// documents as its gate publishes them (consistent names the read model).
type viewedTable struct {
	route, topic string
	codec        goka.Codec
	consistent   string
}

// tableCollector lists the tables of a topology's read models and
// projections, run under group.
type tableCollector struct {
	group  string
	tables []viewedTable
}

func (c *tableCollector) Metrics(*engine.Metrics) error               { return nil }
func (c *tableCollector) Windowed(*engine.Windowed) error             { return nil }
func (c *tableCollector) Events(*engine.Events) error                 { return nil }
func (c *tableCollector) SearchIndex(*engine.SearchIndex) error       { return nil }
func (c *tableCollector) ReadModelIndex(*engine.ReadModelIndex) error { return nil }
func (c *tableCollector) Postgres(*engine.PostgresTable) error        { return nil }

func (c *tableCollector) ReadModel(n *engine.ReadModel) error {
	t := viewedTable{route: "GET /read-models/" + n.Name + "/{key}",
		topic: engine.TableTopic(engine.ReadModelGroup(c.group, n.Name)), codec: documentJSON{}}
	if n.Consistent {
		t.topic, t.consistent = engine.ConsistentTopic(c.group, n.Name), n.Name
	}
	c.tables = append(c.tables, t)
	return nil
}

func (c *tableCollector) Projection(n *engine.Projection) error {
	c.tables = append(c.tables, viewedTable{route: "GET /projections/" + n.Name + "/{key}",
		topic: engine.TableTopic(engine.ProjectionGroup(c.group, n.Name)), codec: stateJSON{n}})
	return nil
}

// documentJSON decodes a read model's table value into its document as
// JSON; a value without a document (the root row is not there) decodes to
// nil, which a views.Table reports as no value.
type documentJSON struct{}

func (documentJSON) Encode(any) ([]byte, error) { return nil, errors.New("read-only") }

func (documentJSON) Decode(b []byte) (any, error) {
	var st engine.ModelState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode read model state: %w", err)
	}
	if st.Document == nil {
		return nil, nil
	}
	return st.Document, nil
}

// stateJSON decodes a projection's table value into its state as JSON.
type stateJSON struct{ p *engine.Projection }

func (stateJSON) Encode(any) ([]byte, error) { return nil, errors.New("read-only") }

func (c stateJSON) Decode(b []byte) (any, error) {
	s, err := c.p.StateOf(b)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(s)
	return json.RawMessage(raw), err
}

type readiness struct {
	Ready      bool              `json:"ready"`
	Processors map[string]string `json:"processors"`
	Views      map[string]string `json:"views,omitempty"`
}

// readyz answers 200 once every processor and every view has caught up,
// 503 before.
func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	body := readiness{Ready: true, Processors: map[string]string{}}
	for _, r := range s.procs {
		state := "caught up"
		if !r.proc.Ready() {
			state, body.Ready = "catching up", false
		}
		body.Processors[r.topo.Name] = state
	}
	if len(s.tables) > 0 {
		body.Views = map[string]string{}
		for _, t := range s.tables {
			state := "recovered"
			if !t.Recovered() {
				state, body.Ready = "recovering", false
			}
			body.Views[t.Topic()] = state
		}
	}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serve serves on ln and runs the views, each once its table topic exists
// (its processor creates it when it starts), until ctx ends.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return s.dash.Run(gctx) })
	for _, t := range s.tables {
		g.Go(func() error {
			if err := s.waitForTopic(gctx, t.Topic()); err != nil {
				return nil // ctx ended
			}
			return t.Run(gctx)
		})
	}
	s.log.Info("serving", "url", "http://"+ln.Addr().String(), "tables", len(s.tables))
	return g.Wait()
}

// waitForTopic returns once topic exists, or ctx's error when ctx ends
// first.
func (s *server) waitForTopic(ctx context.Context, topic string) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if client, err := sarama.NewClient(s.kafka.Brokers, s.sarama); err == nil {
			parts, err := client.Partitions(topic)
			client.Close()
			if err == nil && len(parts) > 0 {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
