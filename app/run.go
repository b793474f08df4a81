package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/dashboard"
	"github.com/cdcflow/cdcflow/internal/connect"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// Run runs the topologies fns declare over the source f names, as [Main]
// does, until ctx ends (it returns nil once every processor has stopped
// cleanly) or something fails (it returns the error, the others stopped).
// Before it connects to anything it checks f against what the topologies
// need, reporting every problem at once.
func Run(ctx context.Context, f Flags, log *slog.Logger, fns ...TopologyFunc) error {
	topos, err := declare(Source{Prefix: f.TopicPrefix, Schema: f.Schema}, fns)
	if err != nil {
		return err
	}
	sinks := sinksOf(topos)
	kafka, svc, err := f.check(sinks)
	if err != nil {
		return err
	}
	sc := processors.SaramaConfig()
	if err := kafka.ApplySarama(sc); err != nil {
		return err
	}
	if err := pingKafka(kafka, sc); err != nil {
		return err
	}
	kgoOpts, err := kafka.KgoOpts() // the event relays' client
	if err != nil {
		return err
	}
	reg, err := connect.Registry("--registry-url", f.RegistryURL, svc.registry)
	if err != nil {
		return err
	}
	var rdb *redis.Client
	if sinks.Redis {
		if rdb, err = connect.Redis(ctx, "--redis-addr", f.RedisAddr, svc.redis); err != nil {
			return err
		}
		defer rdb.Close()
	}
	var es *elasticsearch.Client
	if sinks.Elasticsearch() {
		var shown string
		if es, shown, err = connect.Elasticsearch(ctx, "--es-url", f.ESURL, svc.es); err != nil {
			return err
		}
		log.Info("search indexes in Elasticsearch", "url", shown)
	}
	var pg *pgxpool.Pool
	if sinks.Postgres() {
		if pg, err = pgxpool.New(ctx, f.PostgresDSN); err != nil {
			return fmt.Errorf("--postgres-dsn: %w", err)
		}
		defer pg.Close()
		if err := pg.Ping(ctx); err != nil {
			return fmt.Errorf("PostgreSQL unreachable at --postgres-dsn %s: %w; check --postgres-dsn and that PostgreSQL is running", redact.URL(f.PostgresDSN), err)
		}
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var procs []*running
	for _, t := range topos {
		cfg := processors.Config{
			Brokers: kafka.Brokers, Sarama: kafka.ApplySarama, KafkaOptions: kgoOpts,
			Decoder: serde.NewDecoder(reg), Encoder: serde.NewEncoder(reg, f.TopicPrefix),
			Elasticsearch: es, KeyPrefix: f.RedisPrefix,
			Group: groupOf(f.Group, t), Instance: f.Instance, RetryTimeout: f.RetryTimeout, MarkerRetention: f.MarkerRetention, Postgres: pg,
			Logger: log, Metrics: metrics,
		}
		if rdb != nil { // a nil *redis.Client is not a nil interface
			cfg.Redis = rdb
		}
		if f.StateDir != "" {
			cfg.StateDir = filepath.Join(f.StateDir, t.Name)
		}
		p, err := processors.NewProcessor(t, cfg)
		if err != nil {
			return err
		}
		procs = append(procs, &running{topo: t, group: cfg.Group, proc: p})
	}

	var ln net.Listener
	if f.HTTPAddr != "" {
		if ln, err = net.Listen("tcp", f.HTTPAddr); err != nil {
			return fmt.Errorf("serve HTTP on %s: %w; choose another --http-addr, or set it empty to serve nothing", f.HTTPAddr, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range procs {
		g.Go(func() error { return r.proc.Run(gctx) })
	}
	if ln != nil {
		dash := dashboard.Config{Elasticsearch: es, KeyPrefix: f.RedisPrefix}
		if rdb != nil {
			dash.Redis = rdb
		}
		srv, err := newServer(procs, kafka, sc, metrics, dash, log.With("component", "http"))
		if err != nil {
			ln.Close()
			return err
		}
		g.Go(func() error { return srv.serve(gctx, ln) })
	}
	log.Info("running", "topologies", len(procs), "http", addrOf(ln))
	err = g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped")
		return nil
	}
	return err
}

// running is a topology's processor.
type running struct {
	topo  *topologies.Topology
	group string
	proc  *processors.Processor
}

// groupOf is the consumer group of t under the prefix group.
func groupOf(group string, t *topologies.Topology) string {
	if group == "" {
		return t.Name
	}
	return group + "-" + t.Name
}

// serviceOptions are the connection options of the services beside Kafka.
type serviceOptions struct{ registry, redis, es connect.Options }

// options reads the credentials and TLS settings of the registry, Redis and
// Elasticsearch, reporting every problem at once.
func (f Flags) options() (serviceOptions, error) {
	var o serviceOptions
	var errs [3]error
	o.registry, errs[0] = f.Registry.options("--registry-")
	o.redis, errs[1] = f.Redis.options("--redis-")
	o.es, errs[2] = f.ES.options("--es-")
	return o, errors.Join(errs[:]...)
}

// check reports every problem with f for topologies with sinks at once,
// and returns the Kafka connection and the other services' options.
func (f Flags) check(sinks engine.Sinks) (kafkaconn.Config, serviceOptions, error) {
	var errs []error
	kafka, err := f.Kafka.Connection()
	if err != nil {
		errs = append(errs, err)
	}
	svc, err := f.options()
	if err != nil {
		errs = append(errs, err)
	}
	if f.RegistryURL == "" {
		errs = append(errs, errors.New("no --registry-url: the processors decode capture's records with the schema registry capture registered their schemas with"))
	}
	if sinks.Redis && f.RedisAddr == "" {
		errs = append(errs, errors.New("no --redis-addr: a topology keeps metrics in Redis"))
	}
	if sinks.Postgres() && f.PostgresDSN == "" {
		errs = append(errs, errors.New("no --postgres-dsn: a topology keeps a PostgreSQL table"))
	}
	if sinks.Elasticsearch() && f.ESURL == "" {
		errs = append(errs, errors.New("no --es-url: a topology keeps a search index"))
	} else if sinks.Elasticsearch() {
		if _, err := connect.ParseElasticsearch("--es-url", f.ESURL); err != nil {
			errs = append(errs, err)
		}
	}
	return kafka, svc, errors.Join(errs...)
}

// pingKafka checks that Kafka answers, with the error naming the flags.
func pingKafka(kafka kafkaconn.Config, sc *sarama.Config) error {
	client, err := sarama.NewClient(kafka.Brokers, sc)
	if err != nil {
		return fmt.Errorf("Kafka unreachable at %v: %w; check --kafka-brokers, the TLS and SASL settings, and that Kafka is running", kafka.Brokers, err)
	}
	return client.Close()
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return "http://" + ln.Addr().String()
}
