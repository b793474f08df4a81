package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

// projection is a projection node run as a goka group of its own: a goka
// group has one table, and the topology's is taken by its row state.
type projection struct {
	node *topologies.ProjectionNode
	goka *goka.Processor
}

// buildProjections builds the goka processor of every projection of the
// topology, which runs under group, with the topology's goka options.
//
// A projection's group reads the event topic and sends each event, keyed by
// its projection key, to the group's loop topic; from there every event of a
// key reaches the one partition that keeps the key's table value, and is
// folded into it (topologies.ProjectionNode.Apply) unless it was applied
// already. Stats count each event as a change once it is folded, found
// applied already (also a duplicate) or skipped (a type the projection does
// not declare). An event that cannot be decoded, or whose key function
// returns no key, goes to the dead-letter topic; a table value that cannot be
// decoded, or a state that cannot be encoded, stops the processor.
func (p *Processor) buildProjections(group string) error {
	for _, pr := range p.projections {
		n := pr.node
		graph := goka.DefineGroup(goka.Group(n.Group(group)),
			goka.Input(goka.Stream(n.Input()), new(codec.Bytes), p.projectionInput(n)),
			goka.Loop(new(codec.Bytes), p.projectionFold(n)),
			goka.Persist(new(codec.Bytes)),
			p.deadLetterEdge(),
		)
		if err := graph.Validate(); err != nil {
			return fmt.Errorf("projection %s: %w", n.Name(), err)
		}
		proc, err := goka.NewProcessor(p.cfg.Brokers, graph, p.gokaOptions()...)
		if err != nil {
			return fmt.Errorf("build processor for projection %s: %w", n.Name(), err)
		}
		pr.goka = proc
	}
	return nil
}

// checkEventTopics reports a projection whose event topic does not exist:
// goka would fail on it with less to say.
func (p *Processor) checkEventTopics() error {
	tm, err := p.topicManager(p.cfg.Brokers)
	if err != nil {
		return fmt.Errorf("connect to Kafka: %w", err)
	}
	defer tm.Close()
	for _, pr := range p.projections {
		parts, err := tm.Partitions(pr.node.Input())
		if err == nil && len(parts) == 0 {
			err = errors.New("no partitions")
		}
		if err != nil {
			return fmt.Errorf("projection %s: event topic %s: %w; the processor of the topology that derives its events creates it when it starts: start that one first", pr.node.Name(), pr.node.Input(), err)
		}
	}
	return nil
}

// readEvent decodes an event record of n's topic.
func (p *Processor) readEvent(ctx context.Context, n *topologies.ProjectionNode, value []byte) (topologies.RecordedEvent, bool, error) {
	de, fields, err := p.cfg.Decoder.DecodeEventRecord(ctx, value)
	if err != nil {
		return topologies.RecordedEvent{}, false, fmt.Errorf("decode event: %w", err)
	}
	return n.ReadEvent(topologies.RecordedEvent{
		Event: topologies.Event{Type: de.Type, AggregateID: de.AggregateID},
		ID:    de.ID, Position: de.Position, OccurredAt: de.OccurredAt,
	}, fields)
}

// projectionInput sends each event of n's topic to the loop topic, keyed by
// its projection key.
func (p *Processor) projectionInput(n *topologies.ProjectionNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		value, _ := msg.([]byte)
		if value == nil {
			return
		}
		ev, ok, err := p.readEvent(gctx.Context(), n, value)
		if err != nil {
			p.deadLetter(gctx, value, nil, fmt.Errorf("projection %s: %w", n.Name(), err))
			return
		}
		if !ok {
			p.changes.Add(1)
			return
		}
		key, err := n.Key(ev)
		if err != nil {
			p.deadLetter(gctx, value, &ev.Position, fmt.Errorf("projection %s: %w", n.Name(), err))
			return
		}
		gctx.Loopback(key, value)
	}
}

// projectionFold folds each event of the loop topic into its key's table
// value.
func (p *Processor) projectionFold(n *topologies.ProjectionNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		value, _ := msg.([]byte)
		ev, ok, err := p.readEvent(gctx.Context(), n, value)
		if err != nil {
			p.deadLetter(gctx, value, nil, fmt.Errorf("projection %s: %w", n.Name(), err))
			return
		}
		p.changes.Add(1)
		if !ok {
			return
		}
		stored, _ := gctx.Value().([]byte)
		next, applied, err := n.Apply(stored, ev)
		if err != nil {
			gctx.Fail(err)
		}
		if !applied {
			p.duplicates.Add(1)
			p.cfg.Logger.Debug("event already applied", "projection", n.Name(), "key", gctx.Key(), "aggregate", ev.AggregateID, "position", ev.Position.String())
			return
		}
		gctx.SetValue(next)
	}
}

// ProjectionTable returns the goka table that holds the states of the
// projection node when its topology runs under group (Config.Group, or the
// topology's name), and the codec of its values: Decode returns the state of
// a key, an S of the topologies.Projection[S] that declared node. Only the
// processor writes the table; the codec does not encode.
func ProjectionTable(group string, node *topologies.ProjectionNode) (goka.Table, goka.Codec) {
	return goka.GroupTable(goka.Group(node.Group(group))), projectionCodec{node}
}

type projectionCodec struct{ node *topologies.ProjectionNode }

func (projectionCodec) Encode(any) ([]byte, error) {
	return nil, errors.New("a projection's table is written by its processor only")
}

func (c projectionCodec) Decode(b []byte) (any, error) { return c.node.State(b) }

// NewProjectionView returns a goka view of the table of the projection
// node, whose topology runs under group (see [ProjectionTable]): its Get
// returns a key's state (nil for a key without one). It keeps the table in
// memory unless opts say otherwise; run it with its Run method, and read it
// once it is running (View.WaitRunning).
func NewProjectionView(brokers []string, group string, node *topologies.ProjectionNode, opts ...goka.ViewOption) (*goka.View, error) {
	table, c := ProjectionTable(group, node)
	sc := SaramaConfig()
	view, err := goka.NewView(brokers, table, c, append([]goka.ViewOption{
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(sc)),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(sc, goka.NewTopicManagerConfig())),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("view of projection %s: %w", node.Name(), err)
	}
	return view, nil
}
