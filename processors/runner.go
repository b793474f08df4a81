package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/lovoo/goka"
	gokacodec "github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// Config configures a [Processor]. Brokers and Decoder are required, and the
// sinks the topology's nodes write to: Redis for metrics, Elasticsearch for
// search indices.
type Config struct {
	// Brokers are the Kafka bootstrap servers.
	Brokers []string
	// Decoder decodes the change envelopes (and keys) the topology reads.
	Decoder *serde.Decoder
	// Encoder encodes the domain events of Events nodes (and registers their
	// schemas); required when the topology has any.
	Encoder *serde.Encoder
	// Redis receives the metrics.
	Redis redis.UniversalClient
	// Elasticsearch receives the search index documents.
	Elasticsearch *elasticsearch.Client
	// DeadLetterTopic receives the changes a sink cannot apply (see
	// [HeaderError] for the headers). Default "<topology>.dlq".
	DeadLetterTopic string
	// KeyPrefix prefixes every Redis key. Default "cdcflow".
	KeyPrefix string
	// Group is the Kafka consumer group (goka's group). Default: the
	// topology's name. Two processors of one topology share the work only if
	// they share the group. A projection runs as a group of its own,
	// "<Group>-<projection name>" (see topologies.ProjectionNode.Group).
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
	// Logger receives the processor's log lines. Default: discard.
	Logger *slog.Logger
	// GokaOptions are passed to goka last, e.g. goka.WithTester to run the
	// topology against goka's in-memory tester.
	GokaOptions []goka.ProcessorOption
}

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "cdcflow"
	}
	if c.Replication == 0 {
		c.Replication = 1
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no Kafka brokers: set --kafka-brokers (CDCFLOW_KAFKA_BROKERS)"))
	}
	if c.Decoder == nil {
		errs = append(errs, errors.New("no envelope decoder: a schema registry is required"))
	}
	if c.Replication < 1 {
		errs = append(errs, fmt.Errorf("replication factor %d is below 1", c.Replication))
	}
	return errors.Join(errs...)
}

// Processor runs one topology on goka: one consumer group named after the
// topology, one input per node. Metrics keep their per-row state in Redis,
// next to the series, so that no state elsewhere can drift from them.
type Processor struct {
	topo    *topologies.Topology
	cfg     Config
	metrics *RedisMetrics
	search  *SearchIndex
	// gokas are the goka processors of the topology: its group's (when it
	// has nodes that run there) and its read models'.
	gokas []*goka.Processor
	// projections run as goka groups of their own (projection.go), among
	// gokas.
	projections []*projection

	topicManager goka.TopicManagerBuilder
	group        string

	changes, duplicates, deadLetters atomic.Int64
}

// Stats counts what a processor did since it was built.
type Stats struct {
	// Changes is how many change events its nodes handled (for a
	// projection: domain events).
	Changes int64
	// Duplicates is how many of them a sink had applied already (redelivered
	// or replayed changes), and so changed nothing.
	Duplicates int64
	// DeadLetters is how many records went to the dead-letter topic.
	DeadLetters int64
}

// Stats returns the processor's counters. It is safe to call concurrently
// with Run.
func (p *Processor) Stats() Stats {
	return Stats{Changes: p.changes.Load(), Duplicates: p.duplicates.Load(), DeadLetters: p.deadLetters.Load()}
}

// NewProcessor validates topo and cfg (before connecting to anything),
// creates the read models' internal topics and builds the goka processors,
// which look the input topics up in Kafka: it needs Kafka. Run creates the
// event topics the topology writes.
func NewProcessor(topo *topologies.Topology, cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = topo.Name + ".dlq"
	}
	if err := errors.Join(topo.Validate(), cfg.Validate(), cfg.validateSinks(topo)); err != nil {
		return nil, err
	}
	p := &Processor{topo: topo, cfg: cfg, metrics: NewRedisMetrics(cfg.Redis, cfg.KeyPrefix)}

	group := cfg.Group
	if group == "" {
		group = topo.Name
	}
	var edges []goka.Edge
	var graphs []*goka.GroupGraph
	codec := serde.EventCodec{Decoder: cfg.Decoder}
	persisted := false
	for _, n := range topo.Nodes {
		switch n := n.(type) {
		case *topologies.MetricsNode:
			edges = append(edges, goka.Input(goka.Stream(n.Input()), codec, p.metricsCallback(n)))
		case *topologies.EventsNode:
			if cfg.Encoder == nil {
				return nil, fmt.Errorf("topology %s derives events to %s: set processors.Config.Encoder", topo.Name, n.Output())
			}
			edges = append(edges,
				goka.Input(goka.Stream(n.Input()), codec, p.eventsCallback(n, cfg.Encoder.EventEncoder(n.Output()))),
				goka.Output(goka.Stream(n.Output()), new(gokacodec.Bytes)))
			if !persisted {
				edges = append(edges, goka.Persist(rowStateCodec{}))
				persisted = true
			}
		case *topologies.IndexNode:
			if p.search == nil {
				p.search = NewSearchIndex(cfg.Elasticsearch)
				edges = append(edges, p.deadLetterEdge())
			}
			edges = append(edges, goka.Input(goka.Stream(n.Input()), rawEventCodec{codec}, p.indexCallback(n)))
		case *topologies.ReadModelIndexNode:
			if p.search == nil {
				p.search = NewSearchIndex(cfg.Elasticsearch)
				edges = append(edges, p.deadLetterEdge())
			}
			table := goka.GroupTable(ReadModelGroup(group, n.ReadModel()))
			edges = append(edges, goka.Input(goka.Stream(table), rawModelStateCodec{}, p.readModelSearchCallback(n)))
		case *topologies.ReadModelNode:
			index, model := p.readModelGraphs(group, n)
			if index != nil {
				graphs = append(graphs, index)
			}
			graphs = append(graphs, model)
		case *topologies.ProjectionNode:
			p.projections = append(p.projections, &projection{node: n}) // see buildProjections
		default:
			return nil, fmt.Errorf("topology %s: node kind %T is not supported", topo.Name, n)
		}
	}
	if len(edges) > 0 {
		// Last: it may read a read model's table, which the read model's
		// goka processor creates when it is built.
		graphs = append(graphs, goka.DefineGroup(goka.Group(group), edges...))
	}
	for _, g := range graphs {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("topology %s: group %s: %w", topo.Name, g.Group(), err)
		}
	}

	p.topicManager = p.topicManagerBuilder()
	p.group = group
	// A read model's updates topic is an input of its model stage: goka
	// wants it to exist when the processor is built.
	if err := p.ensureOutputs(false); err != nil {
		return nil, err
	}
	for _, g := range graphs {
		proc, err := goka.NewProcessor(cfg.Brokers, g, p.gokaOptions()...)
		if err != nil {
			return nil, fmt.Errorf("build processor for topology %s, group %s: %w", topo.Name, g.Group(), err)
		}
		p.gokas = append(p.gokas, proc)
	}
	if err := p.buildProjections(group); err != nil {
		return nil, fmt.Errorf("topology %s: %w", topo.Name, err)
	}
	for _, pr := range p.projections {
		p.gokas = append(p.gokas, pr.goka)
	}
	return p, nil
}

// topicManagerBuilder builds goka topic managers with a Kafka client
// configuration of their own.
func (p *Processor) topicManagerBuilder() goka.TopicManagerBuilder {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = p.cfg.Replication
	tmc.Stream.Replication = p.cfg.Replication
	return goka.TopicManagerBuilderWithConfig(SaramaConfig(), tmc)
}

// gokaOptions are the options of one goka processor. Each gets a Kafka
// client configuration of its own: goka's builders set the client id in the
// configuration they are given, and the processors of a topology run
// concurrently.
func (p *Processor) gokaOptions() []goka.ProcessorOption {
	sc := SaramaConfig()
	store := storage.MemoryBuilder()
	if p.cfg.StateDir != "" {
		store = storage.DefaultBuilder(p.cfg.StateDir)
	}
	return append([]goka.ProcessorOption{
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(sc)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(sc)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(sc)),
		goka.WithTopicManagerBuilder(p.topicManagerBuilder()),
		goka.WithStorageBuilder(store),
		goka.WithLogger(gokaLogger{p.cfg.Logger}),
	}, p.cfg.GokaOptions...)
}

// SaramaConfig is the Kafka client configuration cdcflow's processors use:
// read_committed (so aborted capture transactions are never seen), change
// topics read from the beginning by a new group, acks from all replicas,
// emits in order.
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

// Run runs the processor until ctx ends or it fails. It returns nil when ctx
// ends.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.ensureOutputs(true); err != nil {
		return err
	}
	p.cfg.Logger.Info("processor running", "topology", p.topo.Name)
	if len(p.projections) > 0 {
		if err := p.checkEventTopics(); err != nil {
			return fmt.Errorf("topology %s: %w", p.topo.Name, err)
		}
	}
	if p.search != nil || len(p.projections) > 0 {
		if err := p.ensureDeadLetterTopic(); err != nil {
			return fmt.Errorf("topology %s: %w", p.topo.Name, err)
		}
	}
	if p.search != nil {
		if err := p.ensureIndexes(ctx); err != nil {
			return fmt.Errorf("topology %s: %w", p.topo.Name, err)
		}
	}
	// The groups run together: when one fails, the others stop.
	g, gctx := errgroup.WithContext(ctx)
	for _, proc := range p.gokas {
		g.Go(func() error {
			err := proc.Run(gctx)
			if gctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || interrupted(err)) {
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil && (ctx.Err() == nil || !interrupted(err)) {
		return fmt.Errorf("topology %s: %w", p.topo.Name, err)
	}
	return nil
}

// ensureOutputs creates the topics the topology writes (event topics, read
// models' updates), with as many partitions as the topic they come from.
// events says which: the event topics (true) or the read models' (false).
func (p *Processor) ensureOutputs(events bool) error {
	// Event topics are kept forever (retention.ms=-1), for rebuilding
	// projections; a read model's updates topic, internal, for as long as
	// the broker keeps streams.
	type output struct {
		topic, from string
		forever     bool
	}
	var outputs []output
	for _, n := range p.topo.Nodes {
		switch n := n.(type) {
		case *topologies.EventsNode:
			if events {
				outputs = append(outputs, output{n.Output(), n.Input(), true})
			}
		case *topologies.ReadModelNode:
			if !events && len(n.Inputs()) > 1 {
				outputs = append(outputs, output{string(readModelUpdates(p.group, n)), n.Input(), false})
			}
		}
	}
	if len(outputs) == 0 {
		return nil
	}
	var tms [2]goka.TopicManager
	for i := range tms {
		tmc := goka.NewTopicManagerConfig()
		tmc.Stream.Replication = p.cfg.Replication
		if i == 1 {
			tmc.Stream.Retention = -time.Millisecond
		}
		tm, err := goka.NewTopicManager(p.cfg.Brokers, SaramaConfig(), tmc)
		if err != nil {
			return fmt.Errorf("topology %s: connect to Kafka: %w", p.topo.Name, err)
		}
		defer tm.Close()
		tms[i] = tm
	}
	for _, o := range outputs {
		tm := tms[0]
		if o.forever {
			tm = tms[1]
		}
		parts, err := tm.Partitions(o.from)
		if err != nil {
			return fmt.Errorf("topology %s: partitions of %s (is capture running, with this topic prefix?): %w", p.topo.Name, o.from, err)
		}
		if err := tm.EnsureStreamExists(o.topic, len(parts)); err != nil {
			return fmt.Errorf("topology %s: create topic %s: %w", p.topo.Name, o.topic, err)
		}
	}
	return nil
}

// Metrics returns the Redis sink, to read series back.
func (p *Processor) Metrics() *RedisMetrics { return p.metrics }

func (p *Processor) metricsCallback(node *topologies.MetricsNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		ev, ok := msg.(*change.Event)
		if !ok || ev == nil {
			return
		}
		samples, err := node.Measure(ev.After)
		if err != nil {
			fail(gctx, fmt.Errorf("measure change at %s of %s: %w", ev.Position, ev.TableName(), err))
		}
		ctx := gctx.Context()
		row, err := p.rowIdentity(ctx, node.Input(), gctx.Key())
		if err != nil {
			fail(gctx, err)
		}
		applied, err := p.applyWithRetry(ctx, row, ev.Position, samples)
		if err != nil {
			fail(gctx, err)
		}
		if !applied {
			p.duplicates.Add(1)
			p.cfg.Logger.Debug("change already applied", "row", row, "position", ev.Position.String())
		}
		p.changes.Add(1)
	}
}

// rowIdentity names a row independently of the key's schema id: the topic and
// the key columns in name order, topic|id=7.
func (p *Processor) rowIdentity(ctx context.Context, topic, key string) (string, error) {
	cols, err := p.keyColumns(ctx, topic, key)
	if err != nil {
		return "", err
	}
	return topic + "|" + strings.Join(cols, "|"), nil
}

// keyColumns decodes a change topic's key into its columns as name=value, in
// name order.
func (p *Processor) keyColumns(ctx context.Context, topic, key string) ([]string, error) {
	row, err := p.cfg.Decoder.DecodeKey(ctx, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("decode key on %s: %w", topic, err)
	}
	names := slices.Sorted(maps.Keys(row))
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = fmt.Sprintf("%s=%v", n, row[n])
	}
	return cols, nil
}

func (p *Processor) applyWithRetry(ctx context.Context, row string, pos change.Position, samples []topologies.Sample) (bool, error) {
	deadline := time.Now().Add(p.cfg.RetryTimeout)
	backoff := 100 * time.Millisecond
	for {
		applied, err := p.metrics.Apply(ctx, p.topo.Name, row, pos, samples)
		if err == nil {
			return applied, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, err
		}
		p.cfg.Logger.Warn("redis write failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false, err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Debug(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
