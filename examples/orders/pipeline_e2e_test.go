package orders_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lovoo/goka"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"
)

// pipeline runs the example's four topologies over a capturedOrders, as
// `cdcflow run` does, each under a consumer group and a dead-letter topic of
// the test's own: the order metrics (Redis), the order events (Kafka), the
// order summaries with their search index (goka tables, Elasticsearch) and
// the customer-ltv projection of the events.
type pipeline struct {
	c          *capturedOrders
	reg        *sr.Client // the registry the processors use
	rdb        *redis.Client
	es         *elasticsearch.Client
	eventTopic string
	index      string
	pg         *pgxpool.Pool // the summaries' PostgreSQL table's
	pgTable    string        // <stem>.order_summaries
	summary    *topologies.ReadModelNode[orders.OrderSummary]
	ltv        *topologies.ProjectionNode[orders.CustomerLTV]

	procs  map[string]*runningProcessor
	failed map[string]<-chan error // every running part's Run result, capture's too
}

type runningProcessor struct {
	proc *processors.Processor
	stop context.CancelFunc
	done chan error
}

// The names of the pipeline's processors: each runs under the group
// <stem>-<name> and dead-letters to <stem>.<name>.dlq.
const (
	metricsProc     = "metrics"
	eventsProc      = "events"
	summariesProc   = "summaries"
	projectionsProc = "projections"
)

func newPipeline(t *testing.T, c *capturedOrders, reg *sr.Client) *pipeline {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	t.Cleanup(func() { rdb.Close() })
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{testenv.ESURL(t)}})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pgxpool.New(context.Background(), testenv.PGDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	s := c.stem
	eventTopic := "events." + s + ".Order"
	return &pipeline{c: c, reg: reg, rdb: rdb, es: es, pg: pg, pgTable: s + ".order_summaries", eventTopic: eventTopic, index: s + "-summaries",
		summary: orders.SummaryNode(s, s), ltv: orders.CustomerLTVNode(eventTopic),
		procs: map[string]*runningProcessor{}, failed: map[string]<-chan error{"capture": c.done}}
}

func (p *pipeline) deadLetterTopic(name string) string { return p.c.stem + "." + name + ".dlq" }

// start runs one processor until ctx ends or stop is called.
func (p *pipeline) start(ctx context.Context, t *testing.T, name string, topo *topologies.Topology, cfg processors.Config) {
	t.Helper()
	cfg.Brokers, cfg.Decoder, cfg.Group = p.c.brokers, serde.NewDecoder(p.reg), p.c.stem+"-"+name
	cfg.DeadLetterTopic = p.deadLetterTopic(name)
	proc, err := processors.NewProcessor(topo, cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pctx, stop := context.WithCancel(ctx)
	r := &runningProcessor{proc: proc, stop: stop, done: make(chan error, 1)}
	go func() { r.done <- proc.Run(pctx) }()
	p.procs[name], p.failed[name] = r, r.done
}

// startAll starts the four processors.
func (p *pipeline) startAll(ctx context.Context, t *testing.T) {
	t.Helper()
	s := p.c.stem
	p.start(ctx, t, metricsProc, orders.Metrics(s, s), processors.Config{Redis: p.rdb, KeyPrefix: s})
	p.start(ctx, t, eventsProc, orders.Events(s, s, p.eventTopic), processors.Config{Encoder: serde.NewEncoder(p.reg, s)})
	p.start(ctx, t, summariesProc, orders.SummariesInto(s, s, p.index, p.pgTable), processors.Config{Elasticsearch: p.es, Postgres: p.pg})
	// The projection reads the event topic, which the events processor
	// creates when it starts.
	p.waitFor(t, "the event topic", func() bool { return topicExists(ctx, t, p.c.brokers, p.eventTopic) })
	p.start(ctx, t, projectionsProc, orders.Projections(p.eventTopic), processors.Config{})
}

// stopAll stops every processor, failing the test if one ends with an error.
func (p *pipeline) stopAll(t *testing.T) {
	t.Helper()
	for name, r := range p.procs {
		r.stop()
		if err := <-r.done; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	p.procs, p.failed = map[string]*runningProcessor{}, map[string]<-chan error{"capture": p.c.done}
}

// waitFor waits up to 2 minutes for cond, failing the test as soon as
// capture or a processor stops.
func (p *pipeline) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, what, 120*time.Second, cond, p.failed)
}

func (p *pipeline) stats(name string) processors.Stats { return p.procs[name].proc.Stats() }

func (p *pipeline) modelTable() goka.Table {
	return processors.ReadModelTable(p.c.stem+"-"+summariesProc, p.summary)
}

// waitForSQL waits until every sink says what SQL says about the source
// tables: the metrics, the summaries (the read model and its search index)
// and the customer lifetime values; and until the events processor has
// handled every change of the orders topic but the malformed records the
// test produced there.
func (p *pipeline) waitForSQL(ctx context.Context, t *testing.T, malformed int64) {
	t.Helper()
	c := p.c
	wantSummaries := sqlSummaries(ctx, t, c)
	p.waitFor(t, "the summaries to equal SQL", func() bool {
		return reflect.DeepEqual(summariesOf(t, p.summary, readTable(ctx, t, c.brokers, p.modelTable())), wantSummaries)
	})
	p.waitFor(t, "the search documents to equal SQL", func() bool {
		return reflect.DeepEqual(searchSummaries(ctx, t, p.es, p.index), wantSummaries)
	})
	wantMetrics := sqlMetrics(t, ctx, c.db, c.table)
	p.waitFor(t, "the metrics to equal SQL", func() bool {
		return reflect.DeepEqual(redisMetrics(t, ctx, p.rdb, p.procs[metricsProc].proc.Metrics()), wantMetrics)
	})
	// Capture has published every order change: the metrics say what SQL
	// says.
	orderChanges := -malformed
	for _, r := range c.records(ctx, t, c.topic) {
		if r.Value != nil {
			orderChanges++
		}
	}
	var handled int64
	defer func() {
		if t.Failed() {
			t.Logf("the events processor handled %d order changes, want %d", handled, orderChanges)
		}
	}()
	p.waitFor(t, "the events processor to handle every order change", func() bool {
		handled = p.stats(eventsProc).Changes
		return handled == orderChanges
	})
	wantLTV := sqlLTV(ctx, t, c.db, c.table)
	ltvTable := processors.ProjectionTable(c.stem+"-"+projectionsProc, p.ltv)
	p.waitFor(t, "the customer lifetime values to equal SQL", func() bool {
		values, _ := tableValues(ctx, t, c.brokers, string(ltvTable))
		return reflect.DeepEqual(gotLTV(t, p.ltv, values), wantLTV)
	})
}

// orderWorkload commits random order lifecycles to the example's tables:
// customers signing up and being renamed, orders placed (now and then for a
// customer who does not exist yet), paid, shipped, cancelled, changed in
// amount and deleted, line items added, moved and removed. Each step is one
// source transaction. (Orders do not move to another customer: the
// customer-ltv projection, which sees only the events, keeps an order with
// its first customer.)
type orderWorkload struct {
	c   *capturedOrders
	rng *rand.Rand
	day time.Time
}

func newOrderWorkload(c *capturedOrders, seed uint64) *orderWorkload {
	return &orderWorkload{c: c, rng: rand.New(rand.NewPCG(seed, 11)), day: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
}

// step commits one random change.
func (w *orderWorkload) step(ctx context.Context, t *testing.T) {
	t.Helper()
	s, r := w.c.stem, w.rng
	order, customer, item := 1+r.IntN(60), 1+r.IntN(12), 1+r.IntN(120)
	switch r.IntN(10) {
	case 0:
		w.c.exec(ctx, t, "INSERT INTO "+s+".customers VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
			customer, []string{"Ada", "Grace", "Linus", "Barbara", "Edsger"}[r.IntN(5)], []string{"retail", "b2b", "vip"}[r.IntN(3)])
	case 1, 2:
		w.c.exec(ctx, t, "INSERT INTO "+s+".orders (id, customer_id, amount, created_at) VALUES ($1, $2, $3::numeric / 100, $4) ON CONFLICT (id) DO NOTHING",
			order, customer, 100+r.IntN(50_000), w.day.Add(time.Duration(r.IntN(48*60))*time.Minute))
	case 3, 4:
		w.c.exec(ctx, t, "UPDATE "+s+".orders SET status = $2 WHERE id = $1", order, []string{"paid", "shipped", "cancelled"}[r.IntN(3)])
	case 5:
		w.c.exec(ctx, t, "UPDATE "+s+".orders SET amount = $2::numeric / 100 WHERE id = $1", order, 100+r.IntN(50_000))
	case 6, 7:
		w.c.exec(ctx, t, "INSERT INTO "+s+".order_items VALUES ($1, $2, 'widget', $3, $4::numeric / 100) ON CONFLICT (id) DO UPDATE SET order_id = EXCLUDED.order_id, quantity = EXCLUDED.quantity",
			item, order, 1+r.IntN(5), 50+r.IntN(5_000))
	case 8:
		w.c.exec(ctx, t, "DELETE FROM "+s+".order_items WHERE id = $1", item)
	default:
		w.c.exec(ctx, t, "DELETE FROM "+s+".orders WHERE id = $1", order)
	}
}

// pgSummaries reads the summaries' PostgreSQL table back, by order id.
func pgSummaries(ctx context.Context, t *testing.T, p *pipeline) map[string]orders.OrderSummary {
	t.Helper()
	out := map[string]orders.OrderSummary{}
	for key, row := range pgRows(ctx, t, p.pg, p.pgTable) {
		var s orders.OrderSummary
		if err := json.Unmarshal([]byte(row), &s); err != nil {
			t.Fatalf("row %s of %s: %v", key, p.pgTable, err)
		}
		s.CreatedAt = s.CreatedAt.UTC() // timestamptz reads back as +00:00
		out[key] = s
	}
	return out
}

// pgRows reads a table as JSON text per row (its bookkeeping columns too),
// by its first column; a table not created yet is empty.
func pgRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool, table string) map[string]string {
	t.Helper()
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if !exists {
		return out
	}
	rows, err := pool.Query(ctx, "SELECT (to_jsonb(t) -> (SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1))::text, to_jsonb(t)::text FROM "+table+" t", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, row string
		if err := rows.Scan(&key, &row); err != nil {
			t.Fatal(err)
		}
		out[strings.Trim(key, `"`)] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
