package processors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors/searchindex"
	"github.com/lovoo/goka"
)

// indexCallback applies each change of node's table to its search index:
// an insert, update or snapshot read writes the row's document, a delete
// removes it, each with the change's position as external version, through
// the processor's search batcher (writeSearch). A change the index already
// reflects counts as a duplicate. A change that cannot be applied (its
// document cannot be made, Elasticsearch rejects it, or Elasticsearch is
// unreachable for Config.RetryTimeout) goes to the dead-letter topic and the
// processor goes on.
func (p *Processor) indexCallback(node *engine.SearchIndex) func(goka.Context, changeRecord) {
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		if isTruncate(ev) {
			p.truncateIndex(gctx, node, rec)
			return
		}
		row := ev.After
		if ev.Op == change.OpDelete {
			row = ev.Before
		}
		id, doc, err := node.Document(row)
		if err != nil {
			p.counters.change()
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, fmt.Errorf("document of change at %s: %w", ev.Position, err))
			return
		}
		what := fmt.Sprintf("index change of %s into %s", ev.TableName(), node.Index)
		version, err := searchindex.Version(ev.Position)
		if err != nil {
			p.counters.change()
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, fmt.Errorf("%s: %w", what, err))
			return
		}
		p.index.enqueue(gctx, searchWrite{
			op:      searchindex.Op{Index: node.Index, ID: id, Doc: doc, Delete: ev.Op == change.OpDelete, Version: version},
			mapping: node.Mapping, what: what, commitMs: ev.Source.TsMs, latency: true,
		}, rec.raw, &ev.Position)
	}
}

// searchWrite is the write of one document to a search index.
type searchWrite struct {
	op       searchindex.Op
	mapping  string // the index's, to create it
	what     string // what the write does, for its dead letter
	commitMs int64
	latency  bool // observe the apply latency (a change of a table)
}

// writeSearch writes a batch of documents in one bulk request, retrying
// the writes that failed for a reason that may pass (Elasticsearch
// unreachable or overloaded) for Config.RetryTimeout. A write that fails
// for good, or for that long, is dead-lettered; once the processor stops
// (stopping ended), a failed write is not retried, and the batch fails
// instead, its records left uncommitted.
func (p *Processor) writeSearch(ctx, stopping context.Context, batch []searchWrite) ([]error, error) {
	results := make([]searchindex.Result, len(batch))
	remaining := make([]int, len(batch))
	for i := range batch {
		remaining[i] = i
	}
	err := p.retry(stopping, "elasticsearch", p.cfg.RetryTimeout, func(err error) bool { return !searchindex.Permanent(err) }, func() error {
		ops := make([]searchindex.Op, len(remaining))
		for j, i := range remaining {
			w := batch[i]
			if err := p.search.Ensure(ctx, w.op.Index, w.mapping); err != nil {
				return err
			}
			ops[j] = w.op
		}
		res, err := p.search.Bulk(ctx, ops)
		if err != nil {
			return err
		}
		var again []int
		var first error
		for j, i := range remaining {
			if err := res[j].Err; err != nil && !searchindex.Permanent(err) {
				again = append(again, i)
				first = cmp.Or(first, err)
				continue
			}
			results[i] = res[j]
		}
		remaining = again
		return first
	})
	if err != nil {
		if stopping.Err() != nil {
			return nil, errInterrupted
		}
		for _, i := range remaining {
			results[i].Err = err
		}
	}
	errs := make([]error, len(batch))
	for i, w := range batch {
		p.counters.change() // counted once written, with its outcome
		switch r := results[i]; {
		case r.Err != nil:
			errs[i] = fmt.Errorf("%s: %w", w.what, r.Err)
		case !r.Applied:
			p.counters.duplicate()
			p.cfg.Logger.Debug("change already indexed", "index", w.op.Index, "id", w.op.ID, "version", w.op.Version)
		case w.latency:
			p.counters.applied(w.commitMs)
		}
	}
	return errs, nil
}

// searchFailed handles a search write that failed for good: the record
// goes to the dead-letter topic, unless the processor is shutting down. Then
// the write failed because it was cut short, and since goka commits a record
// whose callback returns, the callback is aborted, leaving the record
// uncommitted, to be processed again on restart.
func (p *Processor) searchFailed(gctx goka.Context, raw []byte, pos *change.Position, err error) {
	if gctx.Context().Err() != nil {
		panic(errInterrupted)
	}
	p.deadLetter(gctx, raw, pos, reasonUnapplicable, err)
}

// searchWithRetry runs apply, a write to Elasticsearch, until it succeeds,
// fails for good, or keeps failing for Config.RetryTimeout.
func (p *Processor) searchWithRetry(ctx context.Context, apply func() (bool, error)) (applied bool, err error) {
	err = p.retry(ctx, "elasticsearch", p.cfg.RetryTimeout, func(err error) bool { return !searchindex.Permanent(err) }, func() (err error) {
		applied, err = apply()
		return err
	})
	return applied, err
}

// ensureIndexes creates the topology's search indexes, with their mappings,
// as the processor starts. An index Elasticsearch refuses (a mapping it
// rejects, say) fails the start; an Elasticsearch that does not answer does
// not: the first write creates the index, retrying as every write does.
func (p *Processor) ensureIndexes(ctx context.Context) error {
	for _, x := range engine.SinksOf(p.topo.Engine()).Indexes {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.search.Ensure(ectx, x.Name, x.Mapping)
		cancel()
		switch {
		case err != nil && searchindex.Permanent(err):
			return fmt.Errorf("%w; fix the index's name or mapping (topologies.WithMapping)", err)
		case err != nil:
			p.cfg.Logger.Warn("could not create the search index at start; the first write will", "index", x.Name, "err", err)
		}
	}
	return nil
}

// errInterrupted aborts a callback whose change was not applied because the
// processor is shutting down. Goka commits the record of every callback that
// returns, even after Run's context ended; a panic is the only way to keep it
// from doing so. Run reports it as a clean shutdown.
var errInterrupted = errors.New("cdcflow: change left unapplied and uncommitted: the processor is shutting down")

// interrupted reports whether err, returned by goka after Run's context
// ended, holds only callbacks aborted by errInterrupted (goka reports panics
// as text).
func interrupted(err error) bool {
	return strings.Contains(err.Error(), errInterrupted.Error())
}

// fail stops the processor with err and leaves the message uncommitted, to
// be processed again on restart. goka's Fail panics only while the processor
// runs; once Run's context has ended it records the error and returns, and
// goka would commit the message when the callback returns, so fail panics
// with errInterrupted then.
func (p *Processor) fail(gctx goka.Context, err error) {
	p.counters.failure()
	gctx.Fail(err)
	panic(errInterrupted)
}
