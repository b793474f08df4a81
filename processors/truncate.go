package processors

import (
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/lovoo/goka"
)

// A truncate (op t, which capture publishes when its SkippedOperations
// leave truncates in) names a table and no row. Capture writes it to every
// partition of the table's topic, so each partition's processor sees it in
// order with the changes of the rows that partition holds. The sinks take it
// as the delete of every row of the table the change came before:
//
//   - Metrics: every row of the table whose last applied change came
//     before the truncate stops contributing, and a change of the table at
//     or before the truncate that comes later (from another partition) is
//     ignored (redismetrics.Store.Truncate).
//   - Index: every document of the node's index is deleted at the
//     truncate's version, which keeps the documents later changes wrote
//     (searchindex.Writer.DeleteAll). A search index holds one table.
//   - Events and read models keep their rows in goka tables, per partition,
//     which a callback cannot go through: they do not apply a truncate. It
//     goes to the dead-letter topic with the reason, once per partition,
//     and the processor goes on; the rows' states stay (rebuild a read model
//     under a new group to drop them).

// truncateMetrics applies a truncate to a Metrics node's series.
// The changes before it are written first.
func (p *Processor) truncateMetrics(gctx goka.Context, node *engine.Metrics, rec changeRecord) {
	ev := rec.ev
	if !p.redis.wait() {
		panic(errInterrupted) // the batcher failed, or the processor stops: uncommitted
	}
	ctx := gctx.Context()
	var removed int
	err := p.retry(ctx, "redis", p.cfg.RetryTimeout, always, func() (err error) {
		removed, err = p.metrics.Truncate(ctx, p.topo.Name, node.Input, ev.Position)
		return err
	})
	if err != nil {
		p.fail(gctx, fmt.Errorf("apply the truncate at %s of %s to Redis: %w", ev.Position, ev.TableName(), err))
	}
	p.cfg.Logger.Info("table truncated: its rows no longer count", "topology", p.topo.Name, "table", ev.TableName(),
		"position", ev.Position.String(), "rows_removed", removed)
	p.counters.applied(ev.Source.TsMs)
	p.counters.change()
}

// truncateIndex applies a truncate to an Index node's search index.
// The changes before it are written first.
func (p *Processor) truncateIndex(gctx goka.Context, node *engine.SearchIndex, rec changeRecord) {
	ev := rec.ev
	if !p.index.wait() {
		panic(errInterrupted) // the batcher failed, or the processor stops: uncommitted
	}
	ctx := gctx.Context()
	p.counters.change()
	var deleted int
	_, err := p.searchWithRetry(ctx, func() (bool, error) {
		var err error
		deleted, err = p.search.DeleteAll(ctx, node.Index, ev.Position)
		return true, err
	})
	if err != nil {
		p.searchFailed(gctx, rec.raw, &ev.Position, fmt.Errorf("apply the truncate of %s to %s: %w", ev.TableName(), node.Index, err))
		return
	}
	p.cfg.Logger.Info("table truncated: its documents are deleted", "topology", p.topo.Name, "table", ev.TableName(),
		"index", node.Index, "position", ev.Position.String(), "documents_deleted", deleted)
	p.counters.applied(ev.Source.TsMs)
}

// truncateUnapplicable sends a truncate a node cannot apply to the
// dead-letter topic.
func (p *Processor) truncateUnapplicable(gctx goka.Context, rec changeRecord, what string) {
	ev := rec.ev
	p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable,
		fmt.Errorf("truncate of %s at %s: %s keeps rows per partition and does not apply truncates; its rows of %s stay", ev.TableName(), ev.Position, what, ev.TableName()))
}

// truncateWindows sends a truncate a Windowed node does not apply to the
// dead-letter topic: the truncated rows keep counting in the windows of the
// commit times they were written at (see TruncateWindowsReason).
func (p *Processor) truncateWindows(gctx goka.Context, rec changeRecord, node *engine.Windowed) {
	ev := rec.ev
	p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, engine.TruncateWindowsError(ev, node))
}

func isTruncate(ev *change.Event) bool { return ev.Op == change.OpTruncate }
