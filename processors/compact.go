package processors

import (
	"context"
	"errors"
	"time"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/lovoo/goka"
)

// The tables of read models (both stages) and projections keep a marker of
// every deleted row (or aggregate), so that an older change of it delivered
// later changes nothing (engine/compact.go). The processor drops the markers
// older than Config.MarkerRetention: every sweep interval it visits every
// key of those tables (goka's Visitor, which runs in the partition's own
// loop, between messages) and deletes the keys, or the projection entries,
// that hold only expired markers.

// compactVisitor is the name of the visitor edge of the groups whose tables
// keep markers.
const compactVisitor = "compact-markers"

// sweepInterval is how often the processor sweeps expired markers: a 24th of
// the retention, between a second and an hour.
func sweepInterval(retention time.Duration) time.Duration {
	return min(max(retention/24, time.Second), time.Hour)
}

// compacting tells whether the processor drops markers: not with a negative
// retention (markers are kept forever), nor on goka's tester, which has no
// visitors.
func (p *Processor) compacting() bool { return p.cfg.MarkerRetention > 0 && p.cfg.Tester == nil }

// compactEdges are the visitor edge of a group whose table keeps markers,
// none when the processor does not compact.
func (p *Processor) compactEdges(cb goka.ProcessCallback) []goka.Edge {
	if !p.compacting() {
		return nil
	}
	return []goka.Edge{goka.Visitor(compactVisitor, cb)}
}

// sweepAt is what a sweep hands each visited key: the time it compares the
// markers' times with.
type sweepAt time.Time

// compactState is the visitor callback of a read model stage whose table
// holds states of type *S: it deletes the keys compactable tells may go.
func compactState[S any](p *Processor, compactable func(*S, time.Time, time.Duration) bool) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		now, _ := msg.(sweepAt)
		if st, _ := gctx.Value().(*S); compactable(st, time.Time(now), p.cfg.MarkerRetention) {
			gctx.Delete()
			p.counters.compacted()
		}
	}
}

func (p *Processor) compactModel(node *engine.ReadModel) goka.ProcessCallback {
	return compactState(p, node.CompactModel)
}

func (p *Processor) compactJoin(node *engine.ReadModel) goka.ProcessCallback {
	return compactState(p, node.CompactJoin)
}

func (p *Processor) compactProjection(node *engine.Projection) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		now, _ := msg.(sweepAt)
		stored, _ := gctx.Value().([]byte)
		if stored == nil {
			return
		}
		next, changed, err := node.Compact(stored, time.Time(now), p.cfg.MarkerRetention)
		if err != nil {
			p.cfg.Logger.Warn("compact projection markers: leaving the key as it is", "topology", p.topo.Name, "projection", node.Name, "key", gctx.Key(), "err", err)
			return
		}
		if changed {
			gctx.SetValue(next)
			p.counters.compacted()
		}
	}
}

// sweep visits the tables of procs that keep markers every sweep interval,
// until ctx ends. A visit cut short by a rebalance is tried again at the
// next interval.
func (p *Processor) sweep(ctx context.Context, procs []*goka.Processor) {
	var visited []*goka.Processor
	for i, proc := range procs {
		if p.sweeps[string(p.graphs[i].Group())] {
			visited = append(visited, proc)
		}
	}
	if len(visited) == 0 && p.pg == nil || !p.compacting() {
		return
	}
	for _, proc := range visited {
		if err := proc.WaitForReadyContext(ctx); err != nil {
			return
		}
	}
	every := sweepInterval(p.cfg.MarkerRetention)
	for {
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return
		}
		if p.pg != nil {
			p.pg.compact(ctx)
		}
		for _, proc := range visited {
			n, err := proc.VisitAllWithStats(ctx, compactVisitor, sweepAt(time.Now()))
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, goka.ErrVisitAborted):
				p.cfg.Logger.Debug("marker sweep cut short by a rebalance; next time", "topology", p.topo.Name)
			case err != nil:
				p.cfg.Logger.Warn("marker sweep failed; next time", "topology", p.topo.Name, "err", err)
			default:
				p.cfg.Logger.Debug("marker sweep", "topology", p.topo.Name, "keys", n)
			}
		}
	}
}
