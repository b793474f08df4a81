package processors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// Search returns the Elasticsearch sink, or nil when the processor has no
// search index node.
func (p *Processor) Search() *SearchIndex { return p.search }

// indexCallback applies each change of node's table to its search index:
// an insert, update or snapshot read writes the row's document, a delete
// removes it, each with the change's position as external version. A change
// the index already reflects counts as a duplicate. A change that cannot be
// applied (undecodable, rejected by Elasticsearch, or Elasticsearch
// unreachable for Config.RetryTimeout) goes to the dead-letter topic and the
// processor goes on.
func (p *Processor) indexCallback(node *topologies.IndexNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		m, ok := msg.(*rawEvent)
		if !ok || m == nil {
			return
		}
		if m.err != nil {
			p.deadLetter(gctx, m.raw, nil, m.err)
			return
		}
		ev := m.ev
		if ev == nil {
			return // a tombstone: the delete before it did the work
		}
		p.changes.Add(1)
		ctx := gctx.Context()
		applied, err := p.indexWithRetry(ctx, node, gctx.Key(), ev)
		if err != nil {
			p.searchFailed(gctx, m.raw, &ev.Position, fmt.Errorf("index change of %s into %s: %w", ev.TableName(), node.IndexName(), err))
			return
		}
		if !applied {
			p.duplicates.Add(1)
			p.cfg.Logger.Debug("change already indexed", "index", node.IndexName(), "position", ev.Position.String())
		}
	}
}

func (p *Processor) indexWithRetry(ctx context.Context, node *topologies.IndexNode, key string, ev *change.Event) (bool, error) {
	row := ev.After
	if ev.Op == change.OpDelete {
		row = ev.Before
		if row == nil {
			k, err := p.cfg.Decoder.DecodeKey(ctx, []byte(key))
			if err != nil {
				return false, permanentError{fmt.Errorf("decode key: %w", err)}
			}
			row = k
		}
	}
	id, doc, err := node.Document(row)
	if err != nil {
		return false, permanentError{fmt.Errorf("document of change at %s: %w", ev.Position, err)}
	}
	return p.searchWithRetry(ctx, node.IndexName(), id, func() (bool, error) {
		if err := p.search.Ensure(ctx, node.IndexName(), node.Mapping()); err != nil {
			return false, err
		}
		if ev.Op == change.OpDelete {
			return p.search.Delete(ctx, node.IndexName(), id, ev.Position)
		}
		return p.search.Put(ctx, node.IndexName(), id, doc, ev.Position)
	})
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
	p.deadLetter(gctx, raw, pos, err)
}

// searchWithRetry runs apply, a write of document id to index, until it
// succeeds, fails for good, or keeps failing for Config.RetryTimeout.
func (p *Processor) searchWithRetry(ctx context.Context, index, id string, apply func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(p.cfg.RetryTimeout)
	backoff := 100 * time.Millisecond
	for {
		applied, err := apply()
		if err == nil || isPermanent(err) || ctx.Err() != nil {
			return applied, err
		}
		if time.Now().Add(backoff).After(deadline) {
			return false, fmt.Errorf("gave up after %s: %w", p.cfg.RetryTimeout, err)
		}
		p.cfg.Logger.Warn("elasticsearch write failed; retrying", "index", index, "id", id, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false, errors.Join(err, ctx.Err())
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// ensureDeadLetterTopic creates the dead-letter topic if it is missing (goka
// creates only the topics it reads and its tables), with the broker's
// default retention.
func (p *Processor) ensureDeadLetterTopic() error {
	tm, err := p.topicManager(p.cfg.Brokers)
	if err != nil {
		return fmt.Errorf("create dead-letter topic %s: %w", p.cfg.DeadLetterTopic, err)
	}
	defer tm.Close()
	if parts, err := tm.Partitions(p.cfg.DeadLetterTopic); err == nil && len(parts) > 0 {
		return nil
	}
	if err := tm.EnsureTopicExists(p.cfg.DeadLetterTopic, 1, p.cfg.Replication, map[string]string{}); err != nil {
		return fmt.Errorf("create dead-letter topic %s: %w", p.cfg.DeadLetterTopic, err)
	}
	return nil
}

// ensureIndexes creates the topology's search indexes, with their mappings,
// as the processor starts. An index Elasticsearch refuses (a mapping it
// rejects, say) fails the start; an Elasticsearch that does not answer does
// not: the first write creates the index, retrying as every write does.
func (p *Processor) ensureIndexes(ctx context.Context) error {
	for _, n := range p.topo.Nodes {
		var index, mapping string
		switch n := n.(type) {
		case *topologies.IndexNode:
			index, mapping = n.IndexName(), n.Mapping()
		case *topologies.ReadModelIndexNode:
			index, mapping = n.IndexName(), n.Mapping()
		default:
			continue
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.search.Ensure(ectx, index, mapping)
		cancel()
		switch {
		case err != nil && isPermanent(err):
			return fmt.Errorf("%w; fix the index's name or mapping (topologies.WithMapping)", err)
		case err != nil:
			p.cfg.Logger.Warn("could not create the search index at start; the first write will", "index", index, "err", err)
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

// validateSinks reports the sinks topo's nodes need and c lacks.
func (c *Config) validateSinks(topo *topologies.Topology) error {
	var needRedis, needES bool
	for _, n := range topo.Nodes {
		switch n.(type) {
		case *topologies.MetricsNode:
			needRedis = true
		case *topologies.IndexNode, *topologies.ReadModelIndexNode:
			needES = true
		}
	}
	var errs []error
	if needRedis && c.Redis == nil {
		errs = append(errs, errors.New("no Redis client: set --redis-addr (CDCFLOW_REDIS_ADDR)"))
	}
	if needES && c.Elasticsearch == nil {
		errs = append(errs, errors.New("no Elasticsearch client: the topology has a search index; set Config.Elasticsearch"))
	}
	return errors.Join(errs...)
}

// fail stops the processor with err and leaves the message uncommitted, to
// be processed again on restart. goka's Fail panics only while the processor
// runs; once Run's context has ended it records the error and returns, and
// goka would commit the message when the callback returns, so fail panics
// with errInterrupted then.
func fail(gctx goka.Context, err error) {
	gctx.Fail(err)
	panic(errInterrupted)
}
