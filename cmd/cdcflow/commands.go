package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"golang.org/x/sync/errgroup"
)

// captureFlags configure capture and where it publishes.
type captureFlags struct {
	PgDSN          string   `name:"pg-dsn" help:"PostgreSQL connection string (the password is better kept in PGPASSWORD or ~/.pgpass)." default:"postgres://cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable" env:"CDCFLOW_PG_DSN"`
	Tables         []string `help:"Tables to capture, schema.table; wildcards select by pattern (public.*)." default:"${default_tables}" env:"CDCFLOW_TABLES"`
	ExcludeTables  []string `help:"Tables (or patterns) to leave out of --tables." env:"CDCFLOW_EXCLUDE_TABLES"`
	ExcludeColumns []string `help:"Columns never to capture, schema.table.column (wildcards allowed)." env:"CDCFLOW_EXCLUDE_COLUMNS"`
	MaskColumns    []string `help:"Columns to publish as salted SHA-256 hashes, schema.table.column (wildcards allowed)." env:"CDCFLOW_MASK_COLUMNS"`
	MaskSalt       string   `help:"Secret salt of --mask-columns' hashes." env:"CDCFLOW_MASK_SALT"`
	TopicPrefix    string   `help:"Topic prefix: topics are <prefix>.<schema>.<table>." default:"cdcflow" env:"CDCFLOW_TOPIC_PREFIX"`
	Slot           string   `help:"Logical replication slot." default:"cdcflow" env:"CDCFLOW_SLOT"`
	Publication    string   `help:"Publication." default:"cdcflow" env:"CDCFLOW_PUBLICATION"`
	KafkaBrokers   []string `help:"Kafka bootstrap servers; empty runs an in-process Kafka (kfake) that lives as long as the command." env:"CDCFLOW_KAFKA_BROKERS"`
	RegistryURL    string   `name:"registry-url" help:"Confluent-compatible schema registry URL; empty runs an in-process registry." env:"CDCFLOW_REGISTRY_URL"`

	MetricsAddr         string        `help:"Serve Prometheus metrics on this address at /metrics (e.g. 127.0.0.1:9464); empty serves none." env:"CDCFLOW_METRICS_ADDR"`
	SnapshotMode        string        `help:"When to read the rows the tables already hold: initial, initial_only, no_data or when_needed." default:"initial" env:"CDCFLOW_SNAPSHOT_MODE"`
	DecimalHandlingMode string        `help:"How numeric and money columns travel, as Debezium's decimal.handling.mode: precise (Avro decimal), double or string." default:"precise" env:"CDCFLOW_DECIMAL_HANDLING_MODE"`
	CheckpointTopic     string        `help:"Compacted topic capture commits its position to, in the same Kafka transactions as the changes." default:"cdcflow.checkpoints" env:"CDCFLOW_CHECKPOINT_TOPIC"`
	StatusInterval      time.Duration `help:"How often capture confirms its committed position to PostgreSQL." default:"10s" env:"CDCFLOW_STATUS_INTERVAL"`
	SlotBusyTimeout     time.Duration `help:"How long to wait for a replication slot another connection still holds (e.g. a capture killed a moment ago)." default:"60s" env:"CDCFLOW_SLOT_BUSY_TIMEOUT"`
}

type captureCmd struct {
	captureFlags
}

// services are the Kafka and registry endpoints, embedded ones if none were
// configured.
type services struct {
	brokers  []string
	registry *sr.Client
	metrics  *prometheus.Registry
	close    func()
}

func (f *captureFlags) services(log *slog.Logger) (*services, error) {
	s := &services{brokers: f.KafkaBrokers, close: func() {}, metrics: prometheus.NewRegistry()}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var closers []func()
	if len(s.brokers) == 0 {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("start in-process Kafka: %w", err)
		}
		closers = append(closers, cluster.Close)
		s.brokers = cluster.ListenAddrs()
		log.Info("no --kafka-brokers: using an in-process Kafka (kfake); its topics vanish on exit", "brokers", s.brokers)
	}
	url := f.RegistryURL
	if url == "" {
		reg := srfake.New()
		closers = append(closers, reg.Close)
		url = reg.URL()
		log.Info("no --registry-url: using an in-process schema registry", "url", url)
	}
	client, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		return nil, fmt.Errorf("schema registry client for %s: %w", url, err)
	}
	s.registry = client
	s.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	return s, nil
}

// start builds the services (embedded where none are configured) and a
// Capture publishing to them. cleanup releases both.
func (f *captureFlags) start(log *slog.Logger) (svc *services, c *capture.Capture, cleanup func(), err error) {
	decimals, err := serde.ParseDecimalMode(f.DecimalHandlingMode)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w; set --decimal-handling-mode (CDCFLOW_DECIMAL_HANDLING_MODE)", err)
	}
	svc, err = f.services(log)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err = capture.New(capture.Config{
		DSN: f.PgDSN, Tables: f.Tables, ExcludeTables: f.ExcludeTables, ExcludeColumns: f.ExcludeColumns,
		MaskColumns: f.MaskColumns, MaskSalt: f.MaskSalt, Brokers: svc.brokers, TopicPrefix: f.TopicPrefix, Slot: f.Slot,
		Publication: f.Publication, CheckpointTopic: f.CheckpointTopic, StatusInterval: f.StatusInterval,
		SlotBusyTimeout: f.SlotBusyTimeout,
		Snapshot:        capture.SnapshotMode(f.SnapshotMode), Metrics: svc.metrics,
		Logger: log.With("component", "capture"),
	}, serde.NewEncoder(svc.registry, f.TopicPrefix, serde.DecimalHandling(decimals)))
	if err != nil {
		svc.close()
		return nil, nil, nil, err
	}
	return svc, c, svc.close, nil
}

func (c *captureCmd) Run(ctx context.Context, log *slog.Logger) error {
	svc, cp, cleanup, err := c.start(log)
	if err != nil {
		return err
	}
	defer cleanup()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.Run(gctx) })
	g.Go(func() error { return serveMetrics(gctx, c.MetricsAddr, svc.metrics, log) })
	return g.Wait()
}

// serveMetrics serves the Prometheus metrics on addr until ctx ends; with no
// address it does nothing.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve metrics on %s: %w; choose another --metrics-addr", addr, err)
	}
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
