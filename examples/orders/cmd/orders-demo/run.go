// Command orders-demo runs the whole orders example in one process:
// capture of public.orders, public.customers and public.order_items, and the
// example's topologies on cdcflow's processor runner (package app): order
// metrics in Redis, order events to a Kafka topic, the order summaries read
// model (with an Elasticsearch index when one answers) and the customer-ltv
// projection, with the dashboard, /readyz, /metrics and the read models' and
// projections' query API on --http-addr.
//
// Everything it needs and is not given runs embedded: Kafka and the schema
// registry in-process unless --kafka-brokers and --registry-url name them; a
// throwaway PostgreSQL cluster (from the machine's PostgreSQL binaries) when
// none answers at --pg-dsn; a throwaway redis-server when none answers at
// --redis-addr. With --demo it commits a few scripted rows, with --rate a
// load generator commits order lifecycles at that many operations a second.
//
//	orders-demo [run]   the demo (default)
//	orders-demo loadgen the load generator alone, against any database
//
// Every flag has an environment variable; see orders-demo --help.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/examples/orders/loadgen"
	"github.com/cdcflow/cdcflow/internal/connect"
	"github.com/cdcflow/cdcflow/internal/pgtemp"
	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

type cli struct {
	LogLevel slog.Level `help:"Log level: debug, info, warn, error." default:"info" env:"CDCFLOW_LOG_LEVEL"`
	Config   string     `name:"config" type:"existingfile" help:"YAML file of settings, keyed by flag name (pg-dsn: ..., rate: 5); flags and environment variables override it." env:"CDCFLOW_CONFIG"`

	Run     runCmd     `cmd:"" default:"withargs" help:"Run the demo: capture, every topology of the example, the dashboard (the default command)."`
	Loadgen loadgenCmd `cmd:"" help:"Commit order lifecycles to the orders tables of a database, at a steady rate or a given number."`
}

type runCmd struct {
	app.CaptureFlags

	RedisAddr   string  `name:"redis-addr" help:"Redis for the order metrics: host:port, or a URL with credentials and TLS (rediss://user:password@host:6380/0)." default:"127.0.0.1:56379" env:"CDCFLOW_REDIS_ADDR" redact:"url"`
	RedisPrefix string  `name:"redis-prefix" help:"Prefix of every Redis key." default:"cdcflow" env:"CDCFLOW_REDIS_PREFIX"`
	EventsTopic string  `name:"events-topic" help:"Kafka topic the order domain events go to, and the customer-ltv projection reads (an Avro namespace)." default:"events.Order" env:"CDCFLOW_EVENTS_TOPIC"`
	ESURL       string  `name:"es-url" help:"Elasticsearch URL for the search index of the order summaries, e.g. http://127.0.0.1:9200 (with credentials: http://user:password@host:9200); empty runs the read model without search." env:"CDCFLOW_ES_URL" redact:"url"`
	SearchIndex string  `name:"search-index" help:"Elasticsearch index of the order summaries (with --es-url)." default:"order-summaries" env:"CDCFLOW_SEARCH_INDEX"`
	HTTPAddr    string  `name:"http-addr" help:"Serve the dashboard (/dashboard/), /healthz, /readyz, /metrics and the query API (GET /read-models/summary/{order id}, GET /projections/customer-ltv/{customer id}) here; empty serves nothing." default:"127.0.0.1:8080" env:"CDCFLOW_HTTP_ADDR"`
	Demo        bool    `help:"Commit a few scripted rows (customers, orders, line items, a rename, an order paid and shipped, one changed and deleted), to watch them reach every sink."`
	Rate        float64 `help:"Run the load generator at this many operations a second (0: none)." default:"0" env:"CDCFLOW_DEMO_RATE"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main on args and streams of its own; it returns the exit status:
// 0, or 1 after one line that names what went wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	secrets := &redact.Secrets{}
	errw := secrets.Writer(stderr)
	var c cli
	kctx, err := app.ParseCommandLine(&c, args, stdout, errw, kong.Name("orders-demo"),
		kong.Description("The orders example in one process: capture and every topology of the example, on cdcflow's processor runner, with a dashboard."),
		kong.Vars{"default_tables": "public.orders,public.customers,public.order_items"},
		kong.BindTo(ctx, (*context.Context)(nil)))
	if err != nil {
		if errors.Is(err, app.ErrHelp) {
			return 0
		}
		app.PrintError(errw, "orders-demo", secrets.Error(err))
		return 1
	}
	redact.Collect(reflect.ValueOf(&c).Elem(), secrets)
	log := slog.New(secrets.Handler(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: c.LogLevel})))
	redact.RouteLibraryLogs(log, errw)
	if err := kctx.Run(log); err != nil {
		app.PrintError(errw, "orders-demo", secrets.Error(err))
		return 1
	}
	return 0
}

// validate reports every problem with the flags at once, before anything
// connects.
func (c *runCmd) validate() error {
	var errs []error
	if c.EventsTopic == "" {
		errs = append(errs, errors.New("no events topic: set --events-topic (CDCFLOW_EVENTS_TOPIC), e.g. events.Order"))
	}
	if c.ESURL != "" && c.SearchIndex == "" {
		errs = append(errs, errors.New("no search index: set --search-index (CDCFLOW_SEARCH_INDEX), e.g. order-summaries, or leave --es-url empty"))
	}
	if c.ESURL != "" {
		if _, err := connect.ParseElasticsearch("--es-url", c.ESURL); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// topologies are the example's topologies over the source, as the flags
// choose them.
func (c *runCmd) topologies() []app.TopologyFunc {
	index := "" // the read model alone
	if c.ESURL != "" {
		index = c.SearchIndex
	}
	return []app.TopologyFunc{
		func(src app.Source) *topologies.Topology { return orders.Metrics(src.Prefix, src.Schema) },
		func(src app.Source) *topologies.Topology { return orders.Events(src.Prefix, src.Schema, c.EventsTopic) },
		func(src app.Source) *topologies.Topology { return orders.Summaries(src.Prefix, src.Schema, index) },
		func(app.Source) *topologies.Topology { return orders.Projections(c.EventsTopic) },
	}
}

func (c *runCmd) Run(ctx context.Context, log *slog.Logger) error {
	if err := c.validate(); err != nil {
		return err
	}
	stop, err := c.embedded(ctx, log)
	defer stop()
	if err != nil {
		return err
	}
	rdb, err := connect.Redis(ctx, "--redis-addr", c.RedisAddr, connect.Options{})
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := createDemoTables(ctx, c.PgDSN); err != nil {
		return err
	}
	p, err := c.CaptureFlags.NewCapture(log)
	if err != nil {
		return err
	}
	defer p.Close()
	kafka := c.Kafka
	kafka.Brokers = p.Kafka.Brokers // the in-process Kafka's, when capture runs one
	flags := app.Flags{Kafka: kafka, RegistryURL: p.RegistryURL, RedisAddr: c.RedisAddr, RedisPrefix: c.RedisPrefix,
		ESURL: c.ESURL, TopicPrefix: c.TopicPrefix, Schema: "public", HTTPAddr: c.HTTPAddr, RetryTimeout: time.Minute}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Capture.Run(gctx) })
	g.Go(func() error { return app.ServeMetrics(gctx, c.MetricsAddr, p.Metrics, log) })
	g.Go(func() error { return p.ServeAdmin(gctx, log) })
	g.Go(func() error {
		return printUpdates(gctx, rdb, redismetrics.New(rdb, c.RedisPrefix).Channel(orders.MetricsTopology), log)
	})
	g.Go(func() error {
		select { // the processors read the topics capture creates
		case <-p.Capture.Streaming():
		case <-gctx.Done():
			return nil
		}
		g.Go(func() error { return app.Run(gctx, flags, log, c.topologies()...) })
		g.Go(func() error { return c.logSinks(gctx, p, log) })
		api := ""
		if c.HTTPAddr != "" {
			api = "http://" + c.HTTPAddr
			log.Info("dashboard: "+api+"/dashboard/", "api", api+"/read-models/summary/{order id}")
		}
		if c.Demo {
			g.Go(func() error { return writeDemo(gctx, c.PgDSN, api, log) })
		}
		if c.Rate > 0 {
			g.Go(func() error {
				return generate(gctx, c.PgDSN, loadgen.Config{Rate: c.Rate, Logger: log.With("component", "loadgen")})
			})
		}
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// embedded starts what the flags point at and does not answer, where the
// machine can: a throwaway PostgreSQL cluster for --pg-dsn, a throwaway
// redis-server for --redis-addr; and turns search on when the local
// Elasticsearch of scripts/services answers and --es-url is empty. stop
// stops what it started.
func (c *runCmd) embedded(ctx context.Context, log *slog.Logger) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if !answers(c.PgDSN) {
		bin, err := pgtemp.FindBin()
		if err != nil {
			return stop, fmt.Errorf("no PostgreSQL answers at --pg-dsn %s, and none can be started: %w", redact.URL(c.PgDSN), err)
		}
		log.Info("no PostgreSQL answers at --pg-dsn: starting a throwaway cluster", "binaries", bin)
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cluster, err := pgtemp.Start(sctx, bin)
		cancel()
		if err != nil {
			return stop, err
		}
		stops = append(stops, func() { cluster.Stop() })
		c.PgDSN = cluster.DSN()
		log.Info("started a throwaway PostgreSQL cluster; it is deleted on exit", "dsn", c.PgDSN)
	}
	if !answers("redis://" + strings.TrimPrefix(strings.TrimPrefix(c.RedisAddr, "redis://"), "rediss://")) {
		r, err := pgtemp.StartRedis(ctx)
		if err != nil {
			return stop, fmt.Errorf("no Redis answers at --redis-addr %s, and none can be started: %w", redact.URL(c.RedisAddr), err)
		}
		stops = append(stops, r.Stop)
		c.RedisAddr = r.Addr()
		log.Info("no Redis answers at --redis-addr: started a throwaway redis-server", "addr", c.RedisAddr)
	}
	if c.ESURL == "" && answers(localElasticsearch) {
		c.ESURL = localElasticsearch
		log.Info("search on: Elasticsearch answers at " + localElasticsearch)
	}
	if c.ESURL == "" {
		log.Info("no Elasticsearch: search is off; the order summaries read model runs without a search index")
	}
	return stop, nil
}

// localElasticsearch is where scripts/services runs Elasticsearch.
const localElasticsearch = "http://127.0.0.1:59200"

// answers reports whether something accepts TCP connections at the host of
// raw, a URL.
func answers(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	conn, err := net.DialTimeout("tcp", u.Host, 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// generate runs the load generator over the database at dsn until ctx ends.
func generate(ctx context.Context, dsn string, cfg loadgen.Config) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("load generator: %w", err)
	}
	defer conn.Close(context.Background())
	g, err := loadgen.New(ctx, conn, cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("load generator running", "operations_per_second", cfg.Rate)
	return g.Run(ctx)
}

// printUpdates logs every metric update the processor announces, with the
// series' new totals, until ctx ends.
func printUpdates(ctx context.Context, rdb *redis.Client, channel string, log *slog.Logger) error {
	sub := rdb.Subscribe(ctx, channel)
	defer sub.Close()
	seriesPrefix := strings.TrimSuffix(channel, "updates")
	updates := sub.Channel()
	for {
		select {
		case msg := <-updates:
			var u struct {
				Row      string   `json:"row"`
				Position string   `json:"position"`
				Deltas   [][3]any `json:"deltas"`
			}
			dec := json.NewDecoder(strings.NewReader(msg.Payload))
			dec.UseNumber()
			if err := dec.Decode(&u); err != nil {
				log.Warn("unreadable metric update", "payload", msg.Payload, "err", err)
				continue
			}
			var moves []string
			for _, d := range u.Deltas {
				key, bucket, delta := fmt.Sprint(d[0]), fmt.Sprint(d[1]), fmt.Sprint(d[2])
				total := seriesTotal(ctx, rdb, key, bucket)
				if !strings.HasPrefix(delta, "-") {
					delta = "+" + delta
				}
				moves = append(moves, fmt.Sprintf("%s[%s] %s = %s", strings.TrimPrefix(key, seriesPrefix), bucket, delta, total))
			}
			log.Info("metric update", "row", u.Row, "position", u.Position, "moved", strings.Join(moves, ", "))
		case <-ctx.Done():
			return nil
		}
	}
}

// seriesTotal reads a series' bucket: a hash field, or a sorted set member
// for a ranked series; "0" for a bucket that fell to zero and was removed.
func seriesTotal(ctx context.Context, rdb *redis.Client, key, bucket string) string {
	if total, err := rdb.HGet(ctx, key, bucket).Result(); err == nil {
		return total
	}
	if score, err := rdb.ZScore(ctx, key, bucket).Result(); err == nil {
		return strconv.FormatFloat(score, 'f', -1, 64)
	}
	return "0"
}
