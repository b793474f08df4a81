package processors

import (
	"context"
	"fmt"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// projectionGraph declares the goka group of a projection: a group of its
// own, since a goka group has one table and the topology's is taken by its
// row state.
//
// The group reads the event topic and sends each event, keyed by its
// projection key, to the group's loop topic; from there every event of a key
// reaches the one partition that keeps the key's table value, and is folded
// into it (engine.Projection.Apply) unless it was applied already. Stats
// count each event as a change once it is folded, found applied already
// (also a duplicate) or skipped (a type the projection has no handler for).
// An event that cannot be decoded, or whose key function returns no key,
// goes to the dead-letter topic; a table value that cannot be decoded, or a
// state that cannot be encoded, stops the processor.
func (p *Processor) projectionGraph(n *engine.Projection) *goka.GroupGraph {
	group := engine.ProjectionGroup(p.group, n.Name)
	p.sweeps[group] = true
	return goka.DefineGroup(goka.Group(group), append([]goka.Edge{
		goka.Input(goka.Stream(n.Topic), raw, p.projectionInput(n)),
		goka.Loop(raw, p.projectionFold(n)),
		goka.Persist(raw),
		p.deadLetterEdge(),
	}, p.compactEdges(p.compactProjection(n))...)...)
}

// ProjectionTable returns the goka table that holds the states of the
// projection node when its topology runs under group (Config.Group, or the
// topology's name): its values decode with node.State (package views reads
// them, views.Projection).
func ProjectionTable[S any](group string, node *topologies.ProjectionNode[S]) goka.Table {
	return goka.Table(engine.TableTopic(engine.ProjectionGroup(group, node.Name())))
}

// readEvent decodes an event record of n's topic, waiting for a registry
// that cannot be asked.
func (p *Processor) readEvent(gctx goka.Context, n *engine.Projection, value []byte) (engine.Recorded, bool, error) {
	var de serde.DomainEvent
	var fields map[string]any
	err := p.whileRegistryUnavailable(gctx, func(ctx context.Context) (err error) {
		de, fields, err = p.cfg.Decoder.DecodeEventRecord(ctx, value)
		return err
	})
	if err != nil {
		return engine.Recorded{}, false, fmt.Errorf("decode event: %w", err)
	}
	return n.Read(engine.Recorded{Type: de.Type, AggregateID: de.AggregateID, ID: de.ID,
		Position: de.Position, OccurredAt: de.OccurredAt}, fields)
}

// projectionInput sends each event of n's topic to the loop topic, keyed by
// its projection key.
func (p *Processor) projectionInput(n *engine.Projection) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		value, _ := msg.([]byte)
		if value == nil {
			return
		}
		ev, ok, err := p.readEvent(gctx, n, value)
		if err != nil {
			p.deadLetter(gctx, value, nil, reasonMalformed, fmt.Errorf("projection %s: %w", n.Name, err))
			return
		}
		if !ok {
			p.counters.change()
			return
		}
		key, err := n.Key(ev)
		if err != nil {
			p.deadLetter(gctx, value, &ev.Position, reasonUnapplicable, fmt.Errorf("projection %s: %w", n.Name, err))
			return
		}
		gctx.Loopback(key, value)
	}
}

// projectionFold folds each event of the loop topic into its key's table
// value.
func (p *Processor) projectionFold(n *engine.Projection) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		value, _ := msg.([]byte)
		ev, ok, err := p.readEvent(gctx, n, value)
		if err != nil {
			p.deadLetter(gctx, value, nil, reasonMalformed, fmt.Errorf("projection %s: %w", n.Name, err))
			return
		}
		p.counters.change()
		if !ok {
			return
		}
		stored, _ := gctx.Value().([]byte)
		next, applied, err := n.Apply(stored, ev)
		if err != nil {
			gctx.Fail(err)
		}
		if !applied {
			p.counters.duplicate()
			p.cfg.Logger.Debug("event already applied", "projection", n.Name, "key", gctx.Key(), "aggregate", ev.AggregateID, "position", ev.Position.String())
			return
		}
		gctx.SetValue(next)
	}
}
