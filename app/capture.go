package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/internal/adminapi"
	"github.com/cdcflow/cdcflow/internal/connect"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
)

// CaptureFlags are the settings of capture: the source, what to capture, and
// where to publish (Kafka and the schema registry, in-process ones when
// none are named). cmd/cdcflow's capture command is these flags.
type CaptureFlags struct {
	PgDSN         string   `name:"pg-dsn" help:"PostgreSQL connection string (the password is better kept in PGPASSWORD or ~/.pgpass)." default:"postgres://cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable" env:"CDCFLOW_PG_DSN" redact:"url"`
	Tables        []string `name:"tables" help:"Tables to capture, schema.table; wildcards select by pattern (public.*)." default:"${default_tables}" env:"CDCFLOW_TABLES"`
	ExcludeTables []string `name:"exclude-tables" help:"Tables (or patterns) to leave out of --tables." env:"CDCFLOW_EXCLUDE_TABLES"`
	ColumnFlags   `embed:""`
	TopicPrefix   string `name:"topic-prefix" help:"Topic prefix: topics are <prefix>.<schema>.<table>." default:"cdcflow" env:"CDCFLOW_TOPIC_PREFIX"`
	Slot          string `name:"slot" help:"Logical replication slot." default:"cdcflow" env:"CDCFLOW_SLOT"`
	Publication   string `name:"publication" help:"Publication." default:"cdcflow" env:"CDCFLOW_PUBLICATION"`

	Kafka       KafkaFlags  `embed:"" prefix:"kafka-"`
	RegistryURL string      `name:"registry-url" help:"Confluent-compatible schema registry URL, with basic-auth credentials if it needs them (https://user:password@host:8081); empty runs an in-process registry." env:"CDCFLOW_REGISTRY_URL" redact:"url"`
	Registry    ClientFlags `embed:"" prefix:"registry-" envprefix:"CDCFLOW_REGISTRY_" set:"service=the schema registry"`

	Admin AdminFlags `embed:"" prefix:"admin-" envprefix:"CDCFLOW_ADMIN_"`

	MetricsAddr         string        `name:"metrics-addr" help:"Serve Prometheus metrics on this address at /metrics (e.g. 127.0.0.1:9464); empty serves none." env:"CDCFLOW_METRICS_ADDR"`
	SnapshotMode        string        `name:"snapshot-mode" help:"When to read the rows the tables already hold: initial, initial_only, no_data or when_needed (which also reads the tables again, incrementally, when the slot is lost: the others stop)." default:"initial" env:"CDCFLOW_SNAPSHOT_MODE"`
	DecimalHandlingMode string        `name:"decimal-handling-mode" help:"How numeric and money columns travel, as Debezium's decimal.handling.mode: precise (Avro decimal), double or string." default:"precise" env:"CDCFLOW_DECIMAL_HANDLING_MODE"`
	SpecialDecimalMode  string        `name:"special-decimal-mode" help:"What becomes of a numeric NaN or ±Infinity under --decimal-handling-mode precise: null, as Debezium publishes it, or reject, to the dead-letter topic." default:"null" env:"CDCFLOW_SPECIAL_DECIMAL_MODE"`
	CheckpointTopic     string        `name:"checkpoint-topic" help:"Compacted topic capture commits its position to, in the same Kafka transactions as the changes." default:"cdcflow.checkpoints" env:"CDCFLOW_CHECKPOINT_TOPIC"`
	StatusInterval      time.Duration `name:"status-interval" help:"How often capture confirms its committed position to PostgreSQL." default:"10s" env:"CDCFLOW_STATUS_INTERVAL"`
	SlotBusyTimeout     time.Duration `name:"slot-busy-timeout" help:"How long to wait for a replication slot another connection still holds (e.g. a capture killed a moment ago)." default:"60s" env:"CDCFLOW_SLOT_BUSY_TIMEOUT"`
	SkippedOperations   string        `name:"skipped-operations" help:"Operations not to publish, as Debezium's skipped.operations: a comma-separated list of c, u, d, t, or none to publish every one (truncates too)." default:"t" env:"CDCFLOW_SKIPPED_OPERATIONS"`
	TableRefresh        time.Duration `name:"table-refresh-interval" help:"How often to look for new tables that match a pattern of --tables, to capture them without a restart; 0 turns it off." default:"10s" env:"CDCFLOW_TABLE_REFRESH_INTERVAL"`

	// Incremental snapshots, signals and the slot's failover.
	IncrementalChunkRows int    `name:"incremental-chunk-rows" help:"Rows one chunk of an incremental snapshot reads (Debezium's incremental.snapshot.chunk.size)." default:"1024" env:"CDCFLOW_INCREMENTAL_CHUNK_ROWS"`
	SignalTable          string `name:"signal-table" help:"Signalling table, schema.table, in Debezium's debezium_signal shape (created if missing): rows inserted into it start and stop incremental snapshots. Empty: no signals." env:"CDCFLOW_SIGNAL_TABLE"`
	SlotFailover         bool   `name:"slot-failover" help:"Create the slot as a failover slot, or make it one (PostgreSQL 17 and later; before, capture warns and uses an ordinary slot)." env:"CDCFLOW_SLOT_FAILOVER"`
}

// ColumnFlags are the columns capture leaves out or publishes masked. verify
// takes them too, to read the source rows as capture publishes them.
type ColumnFlags struct {
	ExcludeColumns []string `name:"exclude-columns" help:"Columns never to capture, schema.table.column (wildcards allowed)." env:"CDCFLOW_EXCLUDE_COLUMNS"`
	MaskColumns    []string `name:"mask-columns" help:"Columns to publish as salted SHA-256 hashes, schema.table.column (wildcards allowed)." env:"CDCFLOW_MASK_COLUMNS"`
	MaskSalt       string   `name:"mask-salt" help:"Secret salt of --mask-columns' hashes." env:"CDCFLOW_MASK_SALT" redact:"secret"`
}

// Published is a capture ready to run, and where it publishes: the Kafka
// connection and registry URL a processor reads from (in-process ones when
// the settings named none), and the Prometheus registry its metrics are in.
type Published struct {
	Capture     *capture.Capture
	Kafka       kafkaconn.Config
	RegistryURL string
	Metrics     *prometheus.Registry
	registry    connect.Options // the registry's credentials and TLS
	admin       *adminapi.Config
	close       []func()
}

// RegistryClient returns a client of the schema registry capture registers
// its schemas with, with the credentials and TLS settings it uses.
func (p *Published) RegistryClient() (*sr.Client, error) {
	return connect.Registry("--registry-url", p.RegistryURL, p.registry)
}

// Close stops the in-process Kafka and registry, if any.
func (p *Published) Close() {
	for i := len(p.close) - 1; i >= 0; i-- {
		p.close[i]()
	}
}

// NewCapture checks cf, starts an in-process Kafka (kfake) and schema
// registry where cf names none, and builds the capture. Close the result
// when done.
func (cf CaptureFlags) NewCapture(log *slog.Logger) (*Published, error) {
	decimals, err := serde.ParseDecimalMode(cf.DecimalHandlingMode)
	if err != nil {
		return nil, fmt.Errorf("%w; set --decimal-handling-mode (CDCFLOW_DECIMAL_HANDLING_MODE)", err)
	}
	special, err := serde.ParseSpecialDecimalMode(cf.SpecialDecimalMode)
	if err != nil {
		return nil, fmt.Errorf("%w; set --special-decimal-mode (CDCFLOW_SPECIAL_DECIMAL_MODE)", err)
	}
	skipped, err := capture.ParseSkippedOperations(cf.SkippedOperations)
	if err != nil {
		return nil, fmt.Errorf("%w; set --skipped-operations (CDCFLOW_SKIPPED_OPERATIONS)", err)
	}
	refresh := cf.TableRefresh
	if refresh == 0 {
		refresh = -1 // off
	}
	regOpts, err := cf.Registry.options("--registry-")
	if err != nil {
		return nil, err
	}
	admin, serveAdmin, err := cf.Admin.config()
	if err != nil {
		return nil, err
	}
	p := &Published{Metrics: prometheus.NewRegistry(), RegistryURL: cf.RegistryURL, registry: regOpts}
	if serveAdmin {
		p.admin = &admin
	}
	cfg := capture.Config{
		DSN: cf.PgDSN, Tables: cf.Tables, ExcludeTables: cf.ExcludeTables, ExcludeColumns: cf.ExcludeColumns,
		MaskColumns: cf.MaskColumns, MaskSalt: cf.MaskSalt, Brokers: cf.Kafka.Brokers,
		TopicPrefix: cf.TopicPrefix, Slot: cf.Slot, Publication: cf.Publication, CheckpointTopic: cf.CheckpointTopic,
		StatusInterval: cf.StatusInterval, SlotBusyTimeout: cf.SlotBusyTimeout,
		SkippedOperations: skipped, TableRefreshInterval: refresh,
		IncrementalChunkRows: cf.IncrementalChunkRows, SignalTable: cf.SignalTable, SlotFailover: cf.SlotFailover,
		Snapshot: capture.SnapshotMode(cf.SnapshotMode), SnapshotProgress: snapshotBar(), Metrics: p.Metrics,
		Logger: log.With("component", "capture"),
	}
	// Every mistake in the settings is told before anything starts.
	check := cfg
	if len(check.Brokers) == 0 {
		check.Brokers = []string{"in-process"}
	}
	if err := check.Validate(); err != nil {
		return nil, err
	}
	p.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	kf := cf.Kafka
	if len(kf.Brokers) == 0 {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("start in-process Kafka: %w", err)
		}
		p.close = append(p.close, cluster.Close)
		kf = KafkaFlags{Brokers: cluster.ListenAddrs()}
		log.Info("no --kafka-brokers: using an in-process Kafka (kfake); its topics vanish on exit", "brokers", kf.Brokers)
	}
	if p.Kafka, err = kf.Connection(); err != nil {
		p.Close()
		return nil, err
	}
	if p.RegistryURL == "" {
		reg := srfake.New()
		p.close = append(p.close, reg.Close)
		p.RegistryURL, p.registry = reg.URL(), connect.Options{}
		log.Info("no --registry-url: using an in-process schema registry", "url", p.RegistryURL)
	}
	reg, err := p.RegistryClient()
	if err != nil {
		p.Close()
		return nil, err
	}
	if cfg.KafkaOptions, err = p.Kafka.KgoOpts(); err != nil {
		p.Close()
		return nil, err
	}
	cfg.Brokers = p.Kafka.Brokers
	p.Capture, err = capture.New(cfg, serde.NewEncoder(reg, cf.TopicPrefix, serde.DecimalHandling(decimals), serde.SpecialDecimals(special)))
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// RunCapture runs capture with cf, and serves its metrics on
// cf.MetricsAddr and its admin API on cf.Admin.Addr, until ctx ends (nil) or capture fails.
func RunCapture(ctx context.Context, cf CaptureFlags, log *slog.Logger) error {
	p, err := cf.NewCapture(log)
	if err != nil {
		return err
	}
	defer p.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Capture.Run(gctx) })
	g.Go(func() error { return ServeMetrics(gctx, cf.MetricsAddr, p.Metrics, log) })
	g.Go(func() error { return p.ServeAdmin(gctx, log) })
	return g.Wait()
}

// ServeMetrics serves the Prometheus metrics of reg at /metrics on addr
// until ctx ends; with no address it does nothing.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve metrics on %s: %w; choose another --metrics-addr", addr, err)
	}
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	if err := serveUntil(ctx, &http.Server{Handler: mux}, ln); err != nil {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// serveUntil serves srv on ln until ctx ends, then shuts it down, giving
// requests in flight 5s.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	srv.ReadHeaderTimeout = 5 * time.Second
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// snapshotBar draws a snapshot's progress on standard error when it is a
// terminal; elsewhere (nil) the log's "snapshot progress" lines and the
// cdcflow_capture_snapshot_rows_total metric tell it.
func snapshotBar() func(done, total int64) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int64) {
		total = max(total, done) // an estimate, and it may be low
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("snapshot"),
				progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("rows"), progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }))
		}
		if total != bar.GetMax64() {
			bar.ChangeMax64(total)
		}
		bar.Set64(done)
	}
}
