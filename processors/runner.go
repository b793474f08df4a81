package processors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/kafkahash"
	"github.com/cdcflow/cdcflow/internal/memstore"
	"github.com/cdcflow/cdcflow/processors/pgsink"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/processors/searchindex"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// Config configures a [Processor]. Brokers and Decoder are required, and the
// sinks the topology's nodes write to: Redis for metrics, Elasticsearch for
// search indices.
type Config struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Sarama, when set, adjusts the Kafka client configuration of every
	// client the processor opens after cdcflow set its own (read_committed,
	// acks from all replicas, ...): for TLS and SASL, say
	// (kafkaconn.Config.ApplySarama).
	Sarama func(*sarama.Config) error
	// KafkaOptions are added to the options of the franz-go client of the
	// event relay (the events of Events nodes are published by it, see
	// relay.go): for TLS and SASL, say (kafkaconn.Config.KgoOpts).
	KafkaOptions []kgo.Opt
	// Instance names this processor among the processors sharing its
	// group, and stays the same across its restarts (a host or pod name):
	// the event relay's transactional id is "<Group>-outbox-relay" followed
	// by "-<Instance>" when set. Processors sharing a group need distinct
	// ones; a restarted processor aborts the open transaction of its
	// predecessor of the same Instance at once.
	Instance string
	// Decoder decodes the change envelopes (and keys) the topology reads.
	Decoder *serde.Decoder
	// Encoder encodes the domain events of Events nodes (and registers their
	// schemas); required when the topology has any.
	Encoder *serde.Encoder
	// Redis receives the metrics; required when the topology has any.
	Redis redis.UniversalClient
	// Elasticsearch receives the search index documents; required when the
	// topology has a search index.
	Elasticsearch *elasticsearch.Client
	// Postgres receives the rows of Postgres nodes; required when the
	// topology has any.
	Postgres *pgxpool.Pool
	// PostgresBatch is how many rows the processor writes to PostgreSQL in
	// one transaction at most. Default 500.
	PostgresBatch int
	// DeadLetterTopic receives the changes a sink cannot apply (see
	// [HeaderError] for the headers). Default "<topology>.dlq".
	DeadLetterTopic string
	// KeyPrefix prefixes every Redis key. Default "cdcflow".
	KeyPrefix string
	// Group is the Kafka consumer group (goka's group). Default: the
	// topology's name. Two processors of one topology share the work only if
	// they share the group. Read models and projections run as groups of
	// their own, named after it: "<Group>-<read model>" and
	// "<Group>-<read model>-join", "<Group>-<projection>".
	Group string
	// Replication is the replication factor of the state (group table)
	// topics goka creates. Default 1; use 3 on a production cluster.
	Replication int
	// StateDir keeps group-table state on disk (LevelDB). Empty keeps it in
	// memory, recovered from the table topic on every start.
	StateDir string
	// RetryTimeout bounds how long a failing Redis write is retried before
	// the processor stops with the error (the change is not committed, so it
	// is processed again on restart), and how long a failing Elasticsearch
	// write is retried before the change goes to the dead-letter topic.
	// Default 1m.
	RetryTimeout time.Duration
	// MarkerRetention is how long the tables of read models and projections
	// keep the marker of a deleted row (or of an aggregate an OnDelete
	// event deleted), counted from the source commit time of the delete:
	// within it, an older change of the row delivered late changes
	// nothing; after it, the marker is dropped, and such a change is
	// applied as if the row had never been deleted. Default 7 days
	// (engine.DefaultMarkerRetention); negative keeps markers forever.
	MarkerRetention time.Duration
	// Logger receives the processor's log lines. Default: discard.
	Logger *slog.Logger
	// Metrics, when set, registers the processor's Prometheus metrics
	// (cdcflow_processor_*, labelled with the topology's name).
	Metrics prometheus.Registerer
	// Tester, when set, runs the topology on goka's in-memory tester
	// (github.com/lovoo/goka/tester) instead of Kafka: Brokers are not
	// needed, topics are created in the tester, and the processor is ready
	// once its groups run.
	Tester goka.Tester
	// GokaOptions are passed to goka last.
	GokaOptions []goka.ProcessorOption
}

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "cdcflow"
	}
	if c.Replication == 0 {
		c.Replication = 1
	}
	if c.PostgresBatch == 0 {
		c.PostgresBatch = 500
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = time.Minute
	}
	if c.MarkerRetention == 0 {
		c.MarkerRetention = engine.DefaultMarkerRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with c at once, naming the fields.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 && c.Tester == nil {
		errs = append(errs, errors.New("Config.Brokers is empty: set the Kafka bootstrap servers"))
	}
	if c.Decoder == nil {
		errs = append(errs, errors.New("Config.Decoder is nil: set a serde.Decoder over the schema registry capture writes to"))
	}
	if c.Replication < 1 {
		errs = append(errs, fmt.Errorf("Config.Replication is %d: set it to 1 or more", c.Replication))
	}
	if c.Sarama != nil {
		if _, err := c.saramaConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateSinks reports the sinks nodes need and c lacks.
func (c *Config) validateSinks(topology string, nodes []engine.Node) error {
	sinks := engine.SinksOf(nodes)
	var errs []error
	if sinks.Redis && c.Redis == nil {
		errs = append(errs, fmt.Errorf("Config.Redis is nil: topology %s keeps metrics in Redis", topology))
	}
	if sinks.Elasticsearch() && c.Elasticsearch == nil {
		errs = append(errs, fmt.Errorf("Config.Elasticsearch is nil: topology %s keeps the search index %s", topology, sinks.Indexes[0].Name))
	}
	if sinks.Postgres() && c.Postgres == nil {
		errs = append(errs, fmt.Errorf("Config.Postgres is nil: topology %s keeps the PostgreSQL table %s", topology, sinks.Tables[0].Target))
	}
	return errors.Join(errs...)
}

// saramaConfig is the Kafka client configuration every client of the
// processor gets: [SaramaConfig], adjusted by Config.Sarama.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	sc := SaramaConfig()
	if c.Sarama != nil {
		if err := c.Sarama(sc); err != nil {
			return nil, fmt.Errorf("Config.Sarama: %w", err)
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("Config.Sarama: the Kafka client configuration is invalid: %w", err)
	}
	return sc, nil
}

// clientConfig is the configuration of the processor's consumers and
// producers: [Config.saramaConfig], asking Kafka for the metadata of the
// topics the client uses only. Sarama's default asks for every topic of the
// cluster as each client starts, and again every 10 minutes: on a Kafka
// holding thousands of topics, megabytes each time, for the few topics a
// processor reads and writes. Topic managers keep the default: goka's asks
// for every topic wherever it checks that one exists, and needs the
// brokers' addresses from the first metadata.
func (c *Config) clientConfig() (*sarama.Config, error) {
	sc, err := c.saramaConfig()
	if err != nil {
		return nil, err
	}
	sc.Metadata.Full = false
	return sc, nil
}

// SaramaConfig is the Kafka client configuration cdcflow's processors start
// from: read_committed (so aborted capture transactions are never seen),
// change topics read from the beginning by a new group, acks from all
// replicas, emits in order.
func SaramaConfig() *sarama.Config {
	sc := goka.DefaultConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Producer.RequiredAcks = sarama.WaitForAll
	// One request in flight per broker: a retried batch cannot overtake the
	// next one, so emits keep their order per partition (an aggregate's
	// events, a projection's loop).
	sc.Net.MaxOpenRequests = 1
	return sc
}

// Processor runs one topology on goka: the topology's own consumer group
// (named after it unless Config.Group says otherwise) with one input per
// Metrics, Events and Index node, and one or two groups of their own per
// read model and projection. Metrics keep their per-row state in Redis, next
// to the series, so that no state elsewhere can drift from them.
type Processor struct {
	topo    *topologies.Topology
	cfg     Config
	group   string
	metrics *redismetrics.Store
	search  *searchindex.Writer
	// graphs are the topology's goka groups, in the order they are built:
	// read models' before the topology's own group, which may read a read
	// model's table.
	graphs []*goka.GroupGraph
	// outputs are the topics the topology writes that goka does not create.
	outputs []output
	// eventInputs are the event topics projections read: they must exist.
	eventInputs []eventInput
	// changeInputs are the change topics the topology reads: they must
	// exist.
	changeInputs []string
	// gateInputs are the transaction topics consistent read models' gates
	// read: they must have one partition.
	gateInputs []string
	// debezium are the change topics another Debezium connector writes
	// (topologies.DebeziumTable), decoded as Debezium's.
	debezium map[string]bool
	// sweeps are the groups whose tables keep markers of deleted rows,
	// which the processor drops once expired (compact.go).
	sweeps map[string]bool
	// pg writes the rows of Postgres nodes (postgres.go); nil without
	// Config.Postgres.
	pg *postgresSink
	// redis and index write the changes of Metrics and Windowed nodes, and
	// of search indexes, in batches (batch.go); made by each Run, when the
	// sink is configured.
	redis *batcher[redisWrite]
	index *batcher[searchWrite]
	// relay publishes the events of Events nodes (relay.go); nil without
	// them. It does not run on goka's tester.
	relay *relay

	counters      *counters
	deadLetterLog *rateLimitedLog
	ready         atomic.Bool
	lagMu         sync.Mutex
	lag           map[string]int64 // by group, as last measured
}

// NewProcessor validates topo and cfg, reporting every problem at once, and
// declares the topology's goka groups. It connects to nothing: Run does.
func NewProcessor(topo *topologies.Topology, cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = topo.Name + ".dlq"
	}
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	nodes := topo.Engine()
	if err := errors.Join(cfg.Validate(), cfg.validateSinks(topo.Name, nodes)); err != nil {
		return nil, err
	}
	counters, err := newCounters(topo.Name, cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", topo.Name, err)
	}
	p := &Processor{topo: topo, cfg: cfg, group: cmp.Or(cfg.Group, topo.Name), counters: counters, deadLetterLog: newRateLimitedLog(),
		sweeps: map[string]bool{}}
	if cfg.Redis != nil {
		p.metrics = redismetrics.New(cfg.Redis, cfg.KeyPrefix)
	}
	if cfg.Elasticsearch != nil {
		p.search = searchindex.New(cfg.Elasticsearch)
	}
	if p.debezium, err = engine.DebeziumTopics(nodes); err != nil {
		return nil, fmt.Errorf("topology %s: %w", topo.Name, err)
	}
	if cfg.Postgres != nil {
		p.pg = newPostgresSink(p, pgsink.New(cfg.Postgres))
	}
	b := &graphBuilder{p: p}
	for _, n := range nodes {
		if err := n.Run(b); err != nil {
			return nil, fmt.Errorf("topology %s: %w", topo.Name, err)
		}
	}
	p.graphs = b.graphs
	if edges := append(b.inputs(), b.edges...); len(edges) > 0 {
		// Last: it may read a read model's table, which the read model's
		// goka processor creates when it starts.
		p.graphs = append(p.graphs, goka.DefineGroup(goka.Group(p.group), append(edges, p.deadLetterEdge())...))
	}
	for _, g := range p.graphs {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("topology %s: group %s: %w", topo.Name, g.Group(), err)
		}
	}
	return p, nil
}

// Metrics returns the Redis sink, to read series back; nil when Config.Redis
// is.
func (p *Processor) Metrics() *redismetrics.Store { return p.metrics }

// Search returns the Elasticsearch sink; nil when Config.Elasticsearch is.
func (p *Processor) Search() *searchindex.Writer { return p.search }

// Groups returns the consumer groups the processor runs as: its goka
// groups, then the event relay's, when it has one (engine.RelayGroup).
func (p *Processor) Groups() []string {
	groups := make([]string, len(p.graphs))
	for i, g := range p.graphs {
		groups[i] = string(g.Group())
	}
	if p.relay != nil {
		groups = append(groups, p.relay.group)
	}
	return groups
}

// Run creates the topics the topology writes (event topics, the dead-letter
// topic, internal topics) and its search indexes if they are missing, then
// runs the topology's goka groups until ctx ends (it returns nil) or one of
// them fails (all stop). Changes are read with read_committed and in order
// per key.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.ensureTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("topology %s: %w", p.topo.Name, err)
	}
	if p.search != nil {
		if err := p.ensureIndexes(ctx); err != nil {
			return fmt.Errorf("topology %s: %w", p.topo.Name, err)
		}
	}
	if p.pg != nil {
		if err := p.pg.ensureTables(ctx); err != nil {
			return fmt.Errorf("topology %s: %w", p.topo.Name, err)
		}
	}
	brokers := p.cfg.Brokers
	if p.cfg.Tester != nil {
		brokers = []string{"tester"}
	}
	procs := make([]*goka.Processor, 0, len(p.graphs))
	for _, g := range p.graphs {
		opts, err := p.gokaOptions()
		if err != nil {
			return err
		}
		proc, err := goka.NewProcessor(brokers, g, opts...)
		if err != nil {
			return fmt.Errorf("topology %s: build processor for group %s: %w", p.topo.Name, g.Group(), err)
		}
		procs = append(procs, proc)
	}
	var batchers []func(ctx, stopping context.Context) error
	if p.metrics != nil {
		p.redis = newBatcher(p, "Redis", p.writeRedis)
		batchers = append(batchers, p.redis.run)
	}
	if p.search != nil {
		p.index = newBatcher(p, "Elasticsearch", p.writeSearch)
		batchers = append(batchers, p.index.run)
	}
	p.cfg.Logger.Info("processor running", "topology", p.topo.Name, "groups", p.Groups())
	// The groups run together: when one fails, the others stop. The
	// batchers write what the groups' callbacks hand them until the groups
	// have stopped: goka waits for the records handed over.
	groupsDone := make(chan struct{})
	batched := p.runBatchers(ctx, groupsDone, batchers...)
	g, gctx := errgroup.WithContext(ctx)
	for _, proc := range procs {
		g.Go(func() error {
			err := proc.Run(gctx)
			if gctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || interrupted(err)) {
				return nil
			}
			return err
		})
	}
	g.Go(func() error { p.watch(gctx, procs); return nil })
	g.Go(func() error { p.sweep(gctx, procs); return nil })
	if p.pg != nil {
		g.Go(func() error { return p.pg.run(gctx) })
	}
	if p.relay != nil && p.cfg.Tester == nil { // the tester has no transactions: the callback emits
		g.Go(func() error { return p.relay.run(gctx) })
	}
	err := g.Wait()
	close(groupsDone)
	err = errors.Join(err, <-batched)
	p.ready.Store(false)
	p.counters.promReady.Set(0)
	if ctx.Err() != nil {
		// Asked to stop: whatever goka says on the way out (a table still
		// recovering, a callback aborted) is the shutdown, not a failure.
		return nil
	}
	if err != nil {
		return fmt.Errorf("topology %s: %w", p.topo.Name, err)
	}
	return nil
}

// gokaOptions are the options of one goka processor. Each gets a Kafka
// client configuration of its own: goka's builders set the client id in the
// configuration they are given, and the processors of a topology run
// concurrently.
func (p *Processor) gokaOptions() ([]goka.ProcessorOption, error) {
	sc, err := p.cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	tmb, err := p.topicManagerBuilder()
	if err != nil {
		return nil, err
	}
	store := memstore.Builder() // goka's own memory storage sorts every key on every new key
	if p.cfg.StateDir != "" {
		store = storage.DefaultBuilder(p.cfg.StateDir)
	}
	opts := []goka.ProcessorOption{
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(sc)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(sc)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(sc)),
		goka.WithTopicManagerBuilder(tmb),
		goka.WithStorageBuilder(store),
		goka.WithLogger(gokaLogger{p.cfg.Logger}),
		// Tables partitioned as capture partitions the change topics.
		goka.WithHasher(kafkahash.New),
	}
	if p.cfg.Tester != nil {
		opts = append(opts, goka.WithTester(p.cfg.Tester))
	}
	return append(opts, p.cfg.GokaOptions...), nil
}

// topicManagerBuilder builds goka topic managers with a Kafka client
// configuration of their own.
func (p *Processor) topicManagerBuilder() (goka.TopicManagerBuilder, error) {
	if p.cfg.Tester != nil {
		return p.cfg.Tester.TopicManagerBuilder(), nil
	}
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	return goka.TopicManagerBuilderWithConfig(sc, p.topicManagerConfig()), nil
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Debug(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
