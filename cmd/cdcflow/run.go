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
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/lovoo/goka"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// runCmd runs the whole orders example: capture of its three tables, its
// four topologies and the query API over the order summaries.
type runCmd struct {
	captureFlags
	RedisAddr   string `help:"Redis address for the order metrics." default:"127.0.0.1:56379" env:"CDCFLOW_REDIS_ADDR"`
	RedisPrefix string `help:"Prefix of every Redis key." default:"cdcflow" env:"CDCFLOW_REDIS_PREFIX"`
	EventsTopic string `name:"events-topic" help:"Kafka topic the order domain events go to, and the customer-ltv projection reads (an Avro namespace)." default:"events.Order" env:"CDCFLOW_EVENTS_TOPIC"`
	ESURL       string `name:"es-url" help:"Elasticsearch URL for the search index of the order summaries, e.g. http://127.0.0.1:9200 (with credentials: http://user:password@host:9200); empty runs the read model without search." env:"CDCFLOW_ES_URL"`
	SearchIndex string `name:"search-index" help:"Elasticsearch index of the order summaries (with --es-url)." default:"order-summaries" env:"CDCFLOW_SEARCH_INDEX"`
	APIAddr     string `name:"api-addr" help:"Serve the order summaries query API on this address (GET /order-summaries/{id}, GET /customers/{id}/orders); empty serves none." default:"127.0.0.1:8080" env:"CDCFLOW_API_ADDR"`
	Demo        bool   `help:"Create public.orders, public.customers and public.order_items if missing and write a few rows, to watch them reach every sink."`
}

// validate reports every problem with the run flags at once, before
// anything connects.
func (r *runCmd) validate() error {
	var errs []error
	if r.EventsTopic == "" {
		errs = append(errs, errors.New("no events topic: set --events-topic (CDCFLOW_EVENTS_TOPIC), e.g. events.Order"))
	}
	if r.ESURL != "" && r.SearchIndex == "" {
		errs = append(errs, errors.New("no search index: set --search-index (CDCFLOW_SEARCH_INDEX), e.g. order-summaries, or leave --es-url empty"))
	}
	if r.ESURL != "" {
		if _, err := parseESURL(r.ESURL); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *runCmd) Run(ctx context.Context, log *slog.Logger) error {
	if err := r.validate(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.RedisAddr})
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("Redis unreachable at %s: %v; check --redis-addr and that Redis is running", r.RedisAddr, err)
	}
	es, err := r.elasticsearch(ctx, log)
	if err != nil {
		return err
	}
	var api net.Listener
	if r.APIAddr != "" {
		api, err = net.Listen("tcp", r.APIAddr)
		if err != nil {
			return fmt.Errorf("serve the query API on %s: %w; choose another --api-addr, or set it empty to serve none", r.APIAddr, err)
		}
		defer api.Close()
		log.Info("serving the query API once the order summaries exist", "url", apiURL(api),
			"routes", "GET /order-summaries/{id}, GET /customers/{id}/orders")
	}
	if r.Demo {
		if err := createDemoTables(ctx, r.PgDSN); err != nil {
			return err
		}
	}
	svc, cp, cleanup, err := r.start(log)
	if err != nil {
		return err
	}
	defer cleanup()
	channel := processors.NewRedisMetrics(rdb, r.RedisPrefix).Channel(orders.MetricsTopology)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.Run(gctx) })
	g.Go(func() error { return printUpdates(gctx, rdb, channel, log) })
	g.Go(func() error { return serveMetrics(gctx, r.MetricsAddr, svc.metrics, log) })
	g.Go(func() error {
		select { // the processors read the topics capture creates
		case <-cp.Streaming():
		case <-gctx.Done():
			return nil
		}
		procs, err := r.processors(svc, rdb, es, log)
		if err != nil {
			return err
		}
		for _, p := range procs {
			g.Go(func() error { return p.Run(gctx) })
		}
		g.Go(func() error { return r.runProjections(gctx, svc, log) })
		g.Go(func() error { return r.logSinks(gctx, svc, log) })
		if api != nil {
			g.Go(func() error { return r.serveAPI(gctx, api, svc, log) })
		}
		if r.Demo {
			g.Go(func() error { return writeDemo(gctx, r.PgDSN, apiURL(api), log) })
		}
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// config is the configuration every processor starts from: the Kafka
// brokers, a decoder of capture's envelopes, the Redis key prefix, and a
// logger with component=<component>.
func (r *runCmd) config(svc *services, log *slog.Logger, component string) processors.Config {
	return processors.Config{
		Brokers:   svc.brokers,
		Decoder:   serde.NewDecoder(svc.registry),
		KeyPrefix: r.RedisPrefix,
		Logger:    log.With("component", component),
	}
}

// processors builds the processors that read capture's topics: the order
// metrics into Redis, the order events to --events-topic, and the order
// summaries read model, with its search index when es is not nil.
func (r *runCmd) processors(svc *services, rdb *redis.Client, es *elasticsearch.Client, log *slog.Logger) ([]*processors.Processor, error) {
	metrics := r.config(svc, log, "metrics")
	metrics.Redis = rdb
	events := r.config(svc, log, "events")
	events.Encoder = serde.NewEncoder(svc.registry, r.TopicPrefix)
	summaries := r.config(svc, log, "summaries")
	index := "" // the read model alone
	if es != nil {
		summaries.Elasticsearch, index = es, r.SearchIndex
	}
	var procs []*processors.Processor
	for _, t := range []struct {
		topo *topologies.Topology
		cfg  processors.Config
	}{
		{orders.Metrics(r.TopicPrefix, "public"), metrics},
		{orders.Events(r.TopicPrefix, "public", r.EventsTopic), events},
		{orders.Summaries(r.TopicPrefix, "public", index), summaries},
	} {
		p, err := processors.NewProcessor(t.topo, t.cfg)
		if err != nil {
			return nil, fmt.Errorf("start topology %s: %w; cdcflow run needs public.orders, public.customers and public.order_items in --tables", t.topo.Name, err)
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// runProjections runs the customer-ltv projection over --events-topic once
// the events processor has created that topic, until ctx ends.
func (r *runCmd) runProjections(ctx context.Context, svc *services, log *slog.Logger) error {
	if err := waitForTopics(ctx, svc.brokers, r.EventsTopic); err != nil {
		return err
	}
	p, err := processors.NewProcessor(orders.Projections(r.EventsTopic), r.config(svc, log, "projections"))
	if err != nil {
		return fmt.Errorf("start topology %s: %w", orders.ProjectionsTopology, err)
	}
	return p.Run(ctx)
}

// serveAPI serves the query API over the order summaries on ln, once the
// summaries processor has created the tables it reads, until ctx ends.
func (r *runCmd) serveAPI(ctx context.Context, ln net.Listener, svc *services, log *slog.Logger) error {
	node := orders.SummaryNode(r.TopicPrefix, "public")
	group := orders.SummaryTopology // the group the summaries processor runs as
	if err := waitForTopics(ctx, svc.brokers,
		string(goka.GroupTable(processors.ReadModelGroup(group, node))),
		string(goka.GroupTable(processors.ReadModelIndexGroup(group, node)))); err != nil {
		return err
	}
	apiLog := log.With("component", "api")
	srv, err := orders.SummaryAPI(svc.brokers, group, r.TopicPrefix, "public", views.ServerConfig{Logger: apiLog, Metrics: svc.metrics})
	if err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	go func() { // ends with ctx at the latest
		if srv.WaitReady(ctx) == nil {
			apiLog.Info("query API ready: the views caught up with the order summaries", "url", apiURL(ln))
		}
	}()
	return srv.Serve(ctx, ln)
}

// apiURL is the base URL of the API served on ln, "" for none.
func apiURL(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return "http://" + ln.Addr().String()
}

// waitForTopics returns nil once every topic exists in Kafka, or ctx.Err()
// when ctx ends first.
func waitForTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := adm.ListTopics(ctx, topics...)
		if err == nil && details.Error() == nil && len(details) == len(topics) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// parseESURL parses --es-url. Its errors never show the URL, which may hold
// a password.
func parseESURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("--es-url is not an http(s) URL; set it like http://127.0.0.1:9200, or leave it empty to run without search")
	}
	return u, nil
}

// elasticsearch connects to --es-url and checks that Elasticsearch answers;
// with no --es-url it returns nil: the order summaries run without search.
func (r *runCmd) elasticsearch(ctx context.Context, log *slog.Logger) (*elasticsearch.Client, error) {
	if r.ESURL == "" {
		log.Info("no --es-url: search is off; the order summaries read model runs without a search index")
		return nil, nil
	}
	u, err := parseESURL(r.ESURL)
	if err != nil {
		return nil, err
	}
	shown := u.Redacted()
	hide := func(err error) string { // the password, should an error quote it
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return msg
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{r.ESURL}})
	if err != nil {
		return nil, fmt.Errorf("Elasticsearch client for %s: %s; check --es-url", shown, hide(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := esapi.ClusterHealthRequest{}.Do(pctx, es)
	if err != nil {
		return nil, fmt.Errorf("Elasticsearch unreachable at %s: %s; check --es-url and that Elasticsearch is running", shown, hide(err))
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.IsError() {
		return nil, fmt.Errorf("Elasticsearch at %s answered %s; check --es-url and the credentials in it", shown, res.Status())
	}
	log.Info("search on: the order summaries are indexed in Elasticsearch", "url", shown, "index", r.SearchIndex)
	if len(r.KafkaBrokers) == 0 {
		// The in-process Kafka starts the read model over on every run, and
		// its documents' versions (per-order revisions) with it.
		res, err := esapi.IndicesExistsRequest{Index: []string{r.SearchIndex}}.Do(pctx, es)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				log.Warn("the search index exists from an earlier run; with the in-process Kafka the read model starts over, and Elasticsearch refuses its document versions until they pass the index's, so documents may stay stale: delete the index or choose another --search-index", "index", r.SearchIndex)
			}
		}
	}
	return es, nil
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
