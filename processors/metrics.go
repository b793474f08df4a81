package processors

import (
	"context"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/lovoo/goka"
)

// redisWrite is the write of one change to the series of a Metrics node
// (windowed nil) or of a Windowed node.
type redisWrite struct {
	windowed *engine.Windowed
	metrics  redismetrics.Change
	window   redismetrics.WindowChange
	commitMs int64 // source commit time, for the latency
}

func (w redisWrite) row() (string, change.Position) {
	if w.windowed != nil {
		return w.window.Row, w.window.Pos
	}
	return w.metrics.Row, w.metrics.Pos
}

// writeRedis applies a batch of metrics changes: the Metrics nodes' in one
// pipeline, each Windowed node's in two round trips
// (redismetrics.Store.ApplyWindowsBatch), retrying for Config.RetryTimeout
// while Redis fails, until stopping ends. A change whose series another Windowed node keeps
// (redismetrics.ErrSeriesTaken) is dead-lettered.
func (p *Processor) writeRedis(ctx, stopping context.Context, batch []redisWrite) ([]error, error) {
	var metrics []redismetrics.Change
	var metricsAt []int
	windowed := map[*engine.Windowed][]int{}
	var nodes []*engine.Windowed
	for i, w := range batch {
		if w.windowed == nil {
			metrics, metricsAt = append(metrics, w.metrics), append(metricsAt, i)
			continue
		}
		if _, ok := windowed[w.windowed]; !ok {
			nodes = append(nodes, w.windowed)
		}
		windowed[w.windowed] = append(windowed[w.windowed], i)
	}
	applied := make([]bool, len(batch))
	late := make([]int, len(batch))
	errs := make([]error, len(batch))
	err := p.retry(stopping, "redis", p.cfg.RetryTimeout, always, func() error {
		if len(metrics) > 0 {
			res, err := p.metrics.ApplyBatch(ctx, p.topo.Name, metrics)
			if err != nil {
				return err
			}
			for j, i := range metricsAt {
				applied[i] = res[j]
			}
		}
		for _, node := range nodes {
			at := windowed[node]
			changes := make([]redismetrics.WindowChange, len(at))
			for j, i := range at {
				changes[j] = batch[i].window
			}
			res, err := p.metrics.ApplyWindowsBatch(ctx, p.topo.Name, node, changes)
			if err != nil {
				return err
			}
			for j, i := range at {
				applied[i], late[i], errs[i] = res[j].Applied, res[j].Late, res[j].Err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply metrics to Redis: %w", err)
	}
	for i, w := range batch {
		row, pos := w.row()
		switch {
		case errs[i] != nil:
			continue // dead-lettered
		case !applied[i]:
			p.counters.duplicate()
			p.cfg.Logger.Debug("change already applied", "row", row, "position", pos.String())
		case late[i] > 0:
			p.counters.lateChange()
			p.cfg.Logger.Debug("late change: some of its windows had closed", "row", row, "position", pos.String(), "late_cells", late[i])
			p.counters.applied(w.commitMs)
		default:
			p.counters.applied(w.commitMs)
		}
		p.counters.change()
	}
	return errs, nil
}

func (p *Processor) metricsCallback(node *engine.Metrics) func(goka.Context, changeRecord) {
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		if isTruncate(ev) {
			p.truncateMetrics(gctx, node, rec)
			return
		}
		samples, err := node.Measure(ev.After)
		if err != nil {
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, fmt.Errorf("measure change at %s of %s: %w", ev.Position, ev.TableName(), err))
			return
		}
		row := engine.RowIdentity(node.Input, rec.key)
		p.redis.enqueue(gctx, redisWrite{metrics: redismetrics.Change{Row: row, Pos: ev.Position, Samples: samples}, commitMs: ev.Source.TsMs}, rec.raw, &ev.Position)
	}
}

func (b *graphBuilder) Windowed(n *engine.Windowed) error {
	b.read(n.Input, b.p.windowedCallback(n))
	return nil
}

// windowedCallback applies each change of node's table to its windowed
// series in Redis: the row counts in the windows of the commit time of the
// change that created it, an update replaces its contribution there, a
// delete removes it (see redismetrics.Store.ApplyWindows). A change whose
// row cannot be measured goes to the dead-letter topic; one Redis keeps
// failing to apply stops the processor, uncommitted, as for Metrics.
func (p *Processor) windowedCallback(node *engine.Windowed) func(goka.Context, changeRecord) {
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		if isTruncate(ev) {
			p.truncateWindows(gctx, rec, node)
			p.counters.change()
			return
		}
		samples, err := node.Samples(ev.After)
		if err != nil {
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, fmt.Errorf("measure change at %s of %s: %w", ev.Position, ev.TableName(), err))
			return
		}
		row := engine.RowIdentity(node.Input, rec.key)
		p.redis.enqueue(gctx, redisWrite{windowed: node, window: redismetrics.WindowChange{Row: row, Pos: ev.Position, CommitMs: ev.Source.TsMs,
			Created: ev.Op == change.OpCreate, Samples: samples}, commitMs: ev.Source.TsMs}, rec.raw, &ev.Position)
	}
}

func always(error) bool { return true }
