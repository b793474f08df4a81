package processors

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// graphBuilder declares the goka groups of a topology, node by node: the
// edges of the topology's own group, and the groups of read models and
// projections.
type graphBuilder struct {
	p         *Processor
	edges     []goka.Edge
	persisted bool
	graphs    []*goka.GroupGraph
	// handlers are, by change topic, the nodes of the topology's group that
	// read it: goka allows one input per topic in a group, so each record
	// is decoded once and handed to each of them in turn.
	handlers map[string][]func(goka.Context, changeRecord)
	topics   []string // in the order first read
	// states are, by read model table topic, the nodes of the topology's
	// group that read the read model's states (its search index, its
	// PostgreSQL table), for the same reason.
	states      map[string][]goka.ProcessCallback
	stateTopics []string
}

// changeTopic notes that the topology reads the change topic topic, which
// capture creates: Run waits for it.
func (b *graphBuilder) changeTopic(topic string) {
	if !slices.Contains(b.p.changeInputs, topic) {
		b.p.changeInputs = append(b.p.changeInputs, topic)
	}
}

// read adds h to the nodes of the topology's group reading topic.
func (b *graphBuilder) read(topic string, h func(goka.Context, changeRecord)) {
	if b.handlers == nil {
		b.handlers = map[string][]func(goka.Context, changeRecord){}
	}
	if _, ok := b.handlers[topic]; !ok {
		b.topics = append(b.topics, topic)
	}
	b.changeTopic(topic)
	b.handlers[topic] = append(b.handlers[topic], h)
}

// inputs returns the input edges of the topology's group: one per change
// topic, which hands each record to every node reading the topic.
func (b *graphBuilder) inputs() []goka.Edge {
	var edges []goka.Edge
	for _, topic := range b.topics {
		hs := b.handlers[topic]
		edges = append(edges, goka.Input(goka.Stream(topic), raw, b.p.changeInput(true, func(gctx goka.Context, rec changeRecord) {
			for _, h := range hs {
				h(gctx, rec)
			}
		})))
	}
	for _, topic := range b.stateTopics {
		cbs := b.states[topic]
		edges = append(edges, goka.Input(goka.Stream(topic), raw, func(gctx goka.Context, msg any) {
			for _, cb := range cbs {
				cb(gctx, msg)
			}
		}))
	}
	return edges
}

// readStates adds cb to the nodes of the topology's group reading the
// states of the read model model.
func (b *graphBuilder) readStates(model *engine.ReadModel, cb goka.ProcessCallback) {
	topic := engine.TableTopic(engine.ReadModelGroup(b.p.group, model.Name))
	if b.states == nil {
		b.states = map[string][]goka.ProcessCallback{}
	}
	if _, ok := b.states[topic]; !ok {
		b.stateTopics = append(b.stateTopics, topic)
	}
	b.states[topic] = append(b.states[topic], cb)
}

// An output is a topic the topology writes that goka does not create: with
// as many partitions as the topic from, or partitions; kept forever, for as
// long as the broker keeps streams, or compacted.
type output struct {
	topic, from string
	partitions  int
	forever     bool
	compacted   bool
}

// An eventInput is an event topic a projection reads.
type eventInput struct{ projection, topic string }

var raw = new(codec.Bytes) // every input is decoded in its callback (input.go)

func (b *graphBuilder) Metrics(n *engine.Metrics) error {
	b.read(n.Input, b.p.metricsCallback(n))
	return nil
}

func (b *graphBuilder) Events(n *engine.Events) error {
	if b.p.cfg.Encoder == nil {
		return fmt.Errorf("Config.Encoder is nil: the topology derives events to %s; set a serde.Encoder", n.Output)
	}
	b.read(n.Input, b.p.eventsCallback(n, b.p.cfg.Encoder.EventEncoder(n.Output)))
	b.edges = append(b.edges, goka.Output(goka.Stream(n.Output), raw))
	if !b.persisted {
		b.edges = append(b.edges, goka.Persist(rowStateCodec{}))
		b.persisted = true
	}
	if b.p.relay == nil {
		b.p.relay = b.p.newRelay()
	}
	// Event topics are kept forever (retention.ms=-1), for rebuilding
	// projections.
	b.p.outputs = append(b.p.outputs, output{topic: n.Output, from: n.Input, forever: true})
	return nil
}

func (b *graphBuilder) SearchIndex(n *engine.SearchIndex) error {
	b.read(n.Input, b.p.indexCallback(n))
	return nil
}

func (b *graphBuilder) ReadModel(n *engine.ReadModel) error {
	join, model := b.p.readModelGraphs(n)
	for _, topic := range n.Inputs() {
		b.changeTopic(topic)
	}
	if join != nil {
		b.graphs = append(b.graphs, join)
		b.p.outputs = append(b.p.outputs, output{topic: engine.UpdatesTopic(b.p.group, n.Name), from: n.Root.Topic})
	}
	b.graphs = append(b.graphs, model)
	if n.Consistent {
		ends, gate, txTopic, err := b.p.gateGraphs(n)
		if err != nil {
			return err
		}
		b.changeTopic(txTopic)
		b.p.gateInputs = append(b.p.gateInputs, txTopic)
		b.graphs = append(b.graphs, ends, gate)
		b.p.outputs = append(b.p.outputs,
			output{topic: engine.GateTopic(b.p.group, n.Name), partitions: 1},
			output{topic: engine.ConsistentTopic(b.p.group, n.Name), partitions: 1, compacted: true})
	}
	return nil
}

func (b *graphBuilder) ReadModelIndex(n *engine.ReadModelIndex) error {
	b.readStates(n.Model, b.p.readModelSearchCallback(n))
	return nil
}

func (b *graphBuilder) Postgres(n *engine.PostgresTable) error {
	if b.p.pg == nil {
		return fmt.Errorf("Config.Postgres is nil: the topology keeps the PostgreSQL table %s; set a pgxpool.Pool", n.Target)
	}
	if n.Model != nil {
		b.readStates(n.Model, b.p.pg.stateCallback(n))
	} else {
		b.read(n.Input, b.p.pg.changeCallback(n))
	}
	return nil
}

func (b *graphBuilder) Projection(n *engine.Projection) error {
	b.graphs = append(b.graphs, b.p.projectionGraph(n))
	b.p.eventInputs = append(b.p.eventInputs, eventInput{projection: n.Name, topic: n.Topic})
	return nil
}

// streamRetention is how long the streams a processor creates keep their
// records, but event topics (forever): Kafka's own default
// (log.retention.hours=168). goka's default, one hour, would let a read
// model's updates topic drop updates its model stage has not read, once a
// segment rolled, after a processor stopped for more than an hour.
const streamRetention = 7 * 24 * time.Hour

// topicManagerConfig is the configuration of the processor's goka topic
// managers: its replication, and streams kept streamRetention.
func (p *Processor) topicManagerConfig() *goka.TopicManagerConfig {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = p.cfg.Replication
	tmc.Stream.Replication = p.cfg.Replication
	tmc.Stream.Retention = streamRetention
	return tmc
}

// outputTopicManager returns a topic manager that creates streams kept
// forever, or streamRetention.
func (p *Processor) outputTopicManager(forever bool) (goka.TopicManager, error) {
	if p.cfg.Tester != nil {
		return p.cfg.Tester.TopicManagerBuilder()(nil)
	}
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	tmc := p.topicManagerConfig()
	if forever {
		// goka writes retention.ms as Retention.Milliseconds(): -1ms is
		// Kafka's "forever" (a bare -1 is -1ns, written as 0: deleted at
		// once).
		tmc.Stream.Retention = -time.Millisecond
	}
	tm, err := goka.NewTopicManager(p.cfg.Brokers, sc, tmc)
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka at %v: %w; check Config.Brokers and that Kafka is running", p.cfg.Brokers, err)
	}
	return tm, nil
}

// ensureTopics waits until the change topics the topology reads exist
// (capture creates them), creates the topics the topology writes and goka
// does not create: the dead-letter topic, event topics and read models'
// updates topics, these two with as many partitions as the topic they come
// from; then waits until the event topics projections read exist (the
// processor of the topology that derives the events creates them when it
// starts), until ctx ends.
func (p *Processor) ensureTopics(ctx context.Context) error {
	var tms [2]goka.TopicManager // streams kept as the broker keeps them, and forever
	for i := range tms {
		tm, err := p.outputTopicManager(i == 1)
		if err != nil {
			return err
		}
		defer tm.Close()
		tms[i] = tm
	}
	for _, topic := range p.changeInputs {
		err := waitTopic(ctx, tms[0], topic, func() {
			if strings.HasSuffix(topic, ".transaction") {
				p.cfg.Logger.Warn("waiting for the transaction topic a transaction-consistent read model reads; capture creates it when it starts: is capture running, with the same topic prefix, and without --no-transaction-topic?",
					"topology", p.topo.Name, "topic", topic)
				return
			}
			p.cfg.Logger.Warn("waiting for a change topic the topology reads; capture creates it when it starts: is capture running, with the same topic prefix, and does it capture this table?",
				"topology", p.topo.Name, "topic", topic)
		})
		if err != nil {
			return err
		}
	}
	for _, topic := range p.gateInputs {
		if parts, err := tms[0].Partitions(topic); err != nil || len(parts) != 1 {
			return fmt.Errorf("topology %s has a transaction-consistent read model, whose gate reads END records in commit order from a transaction topic of one partition; %s has %d: recreate it with one partition (capture creates it so)", p.topo.Name, topic, len(parts))
		}
	}
	if parts, err := tms[0].Partitions(p.cfg.DeadLetterTopic); err != nil || len(parts) == 0 {
		if err := tms[0].EnsureTopicExists(p.cfg.DeadLetterTopic, 1, p.cfg.Replication, map[string]string{}); err != nil {
			return fmt.Errorf("create dead-letter topic %s: %w", p.cfg.DeadLetterTopic, err)
		}
	}
	for _, o := range p.outputs {
		tm := tms[0]
		if o.forever {
			tm = tms[1]
		}
		n := o.partitions
		if n == 0 {
			parts, err := tm.Partitions(o.from)
			if err != nil {
				return fmt.Errorf("partitions of %s (is capture running, with this topic prefix?): %w", o.from, err)
			}
			n = len(parts)
		}
		ensure := tm.EnsureStreamExists
		if o.compacted {
			ensure = tm.EnsureTableExists
		}
		if err := ensure(o.topic, n); err != nil {
			return fmt.Errorf("create topic %s: %w", o.topic, err)
		}
		if o.forever {
			if err := p.keepForever(ctx, o.topic); err != nil {
				return err
			}
		}
	}
	if err := p.ensureTables(ctx, tms[0]); err != nil {
		return err
	}
	for _, in := range p.eventInputs {
		err := waitTopic(ctx, tms[0], in.topic, func() {
			p.cfg.Logger.Info("waiting for the event topic a projection reads; the processor of the topology that derives its events creates it when it starts",
				"topology", p.topo.Name, "projection", in.projection, "topic", in.topic)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureTables creates the group tables of the groups whose inputs exist,
// with as many partitions as their inputs, as goka would when the group
// starts, and waits until every partition of them and of the topics created
// above answers: goka asks a table's offsets the moment it has created it,
// and a broker that has not yet learned it leads a new partition answers
// "not the leader", which stops the group (seen on a fresh Kafka).
func (p *Processor) ensureTables(ctx context.Context, tm goka.TopicManager) error {
	if p.cfg.Tester != nil {
		return nil
	}
	topics := []string{p.cfg.DeadLetterTopic}
	for _, o := range p.outputs {
		topics = append(topics, o.topic)
	}
	for _, g := range p.graphs {
		ins := g.InputStreams()
		if g.GroupTable() == nil || len(ins) == 0 {
			continue
		}
		parts, err := tm.Partitions(ins[0].Topic())
		if err != nil || len(parts) == 0 {
			continue // an input goka creates itself (a loopback): goka sizes the table
		}
		table := string(goka.GroupTable(g.Group()))
		if err := tm.EnsureTableExists(table, len(parts)); err != nil {
			return fmt.Errorf("create table topic %s: %w", table, err)
		}
		topics = append(topics, table)
	}
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return err
	}
	client, err := sarama.NewClient(p.cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("connect to Kafka at %v: %w; check Config.Brokers and that Kafka is running", p.cfg.Brokers, err)
	}
	defer client.Close()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return kafkaconn.WaitLeaders(wctx, client, topics...)
}

// waitTopic waits until topic exists, checking every second, calling
// waiting once if it does not at first; it returns ctx's error if ctx ends
// first.
func waitTopic(ctx context.Context, tm goka.TopicManager, topic string, waiting func()) error {
	for logged := false; ; {
		parts, err := tm.Partitions(topic)
		if err == nil && len(parts) > 0 {
			return nil
		}
		if !logged {
			waiting()
			logged = true
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
