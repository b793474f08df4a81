package processors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/lovoo/goka"
)

// Sinks that a round trip per change would hold back (Redis, Elasticsearch)
// are written in batches: a callback makes its write, hands it to the
// sink's batcher with goka's deferred commit and returns; the batcher
// writes what the callbacks handed it, up to sinkBatch writes in one
// round trip, as soon as the previous batch is written. A record is
// committed only once its write is (or it went to the dead-letter topic):
//
//   - every write applies at most once (positions, versions), so a batch
//     sent again after a failure, or a record processed again after a
//     crash, changes nothing twice;
//   - a batch that fails for good fails the processor: its records, and
//     every record handed to the batcher after them, are left uncommitted
//     (goka commits a partition's offsets in order, so a later record must
//     not be committed before an earlier one);
//   - when the processor stops, goka waits for the records handed over,
//     and the batcher writes them before their offsets are committed,
//     for shutdownGrace at most once the processor was asked to stop.
//
// A change a node cannot apply for a reason retrying does not fix goes to
// the dead-letter topic from the batcher, with the headers the callback's
// dead letter would have had.

// sinkBatch is how many writes a batcher sends in one round trip at most.
const sinkBatch = 500

// shutdownGrace bounds how long the batchers keep writing once the
// processor was asked to stop.
const shutdownGrace = 10 * time.Second

// batchItem is a write handed to a batcher with the function that commits
// its record (done), and what the record's dead letter would carry. A
// barrier carries no write: it is done once the writes before it are.
type batchItem[W any] struct {
	w       W
	done    func(error)
	dl      deadLetterRecord
	barrier bool
}

// A batcher writes the writes callbacks hand it in batches (see above).
// write applies a batch and returns, per write, the error to dead-letter
// it with (nil: applied or already applied); its own error fails the
// batch for good.
type batcher[W any] struct {
	p       *Processor
	service string
	in      chan batchItem[W]
	stopped chan struct{}
	write   func(ctx, stopping context.Context, batch []W) ([]error, error)
}

func newBatcher[W any](p *Processor, service string, write func(ctx, stopping context.Context, batch []W) ([]error, error)) *batcher[W] {
	return &batcher[W]{p: p, service: service, in: make(chan batchItem[W], 2*sinkBatch), stopped: make(chan struct{}), write: write}
}

// enqueue hands w, the write of the record gctx holds, to the batcher,
// deferring the record's commit until w is written. pos is the change's
// position, for the dead letter. It blocks while 2*sinkBatch writes wait.
func (b *batcher[W]) enqueue(gctx goka.Context, w W, raw []byte, pos *change.Position) {
	b.send(batchItem[W]{w: w, done: gctx.DeferCommit(), dl: newDeadLetterRecord(gctx, raw, pos)})
}

func (b *batcher[W]) send(it batchItem[W]) {
	select {
	case b.in <- it:
	case <-b.stopped:
		it.done(errInterrupted)
	}
}

// wait blocks until every write handed to the batcher before is written;
// it reports false when they were not (the processor is failing or
// stopping: the caller leaves its record uncommitted).
func (b *batcher[W]) wait() bool {
	ch := make(chan error, 1)
	b.send(batchItem[W]{barrier: true, done: func(err error) { ch <- err }})
	return <-ch == nil
}

// run writes batches until ctx ends, then leaves what waits uncommitted.
// stopping ends when the processor is asked to stop: from then on a write
// that fails is not retried, its records left uncommitted.
// After a batch failed for good it writes nothing more: every write handed
// to it after fails too, its record left uncommitted.
func (b *batcher[W]) run(ctx, stopping context.Context) error {
	defer close(b.stopped)
	dlq, err := b.p.deadLetterEmitter()
	if err != nil {
		return err
	}
	defer dlq.Finish()
	var failed error
	batch := make([]batchItem[W], 0, sinkBatch)
	writes := make([]W, 0, sinkBatch)
	for {
		batch, writes = batch[:0], writes[:0]
		select {
		case it := <-b.in:
			batch = append(batch, it)
		case <-ctx.Done():
			b.drop(errInterrupted)
			return nil
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case it := <-b.in:
				batch = append(batch, it)
			default:
				break fill
			}
		}
		if failed != nil {
			for _, it := range batch {
				it.done(failed)
			}
			continue
		}
		for _, it := range batch {
			if !it.barrier {
				writes = append(writes, it.w)
			}
		}
		var errs []error
		if len(writes) > 0 {
			errs, err = b.write(ctx, stopping, writes)
		}
		if err != nil {
			if stopping.Err() != nil {
				err = errInterrupted
			} else {
				b.p.counters.failure()
				b.p.cfg.Logger.Error(b.service+" write failed; the processor stops, the changes uncommitted", "topology", b.p.topo.Name, "changes", len(writes), "err", err)
			}
			failed = fmt.Errorf("write %d changes to %s: %w", len(writes), b.service, err)
			for _, it := range batch {
				it.done(failed)
			}
			continue
		}
		i := 0
		for _, it := range batch {
			if it.barrier {
				it.done(nil)
				continue
			}
			if errs[i] != nil {
				if err := it.dl.emit(b.p, dlq, reasonUnapplicable, errs[i]); err != nil {
					it.done(err)
					i++
					continue
				}
			}
			it.done(nil)
			i++
		}
	}
}

// drop leaves the waiting writes' records uncommitted, as the processor
// stops.
func (b *batcher[W]) drop(err error) {
	for {
		select {
		case it := <-b.in:
			it.done(err)
		default:
			return
		}
	}
}

// runBatchers runs the processor's batchers until the goka groups have
// stopped (groupsDone closes), or for shutdownGrace after ctx ended,
// whichever comes first. It returns once they returned.
func (p *Processor) runBatchers(ctx context.Context, groupsDone <-chan struct{}, runs ...func(ctx, stopping context.Context) error) <-chan error {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-groupsDone:
		case <-ctx.Done():
			select {
			case <-groupsDone:
			case <-time.After(shutdownGrace):
			}
		}
		cancel()
	}()
	errs := make(chan error, 1)
	results := make(chan error, len(runs))
	for _, run := range runs {
		go func() { results <- run(bctx, ctx) }()
	}
	go func() {
		var all []error
		for range runs {
			all = append(all, <-results)
		}
		cancel()
		errs <- errors.Join(all...)
	}()
	return errs
}

// deadLetterRecord is what the dead letter of a record handed to a
// batcher carries: its value, key and the headers of [Processor.deadLetter]
// but the error.
type deadLetterRecord struct {
	raw    []byte
	key    string
	header goka.Headers
}

func newDeadLetterRecord(gctx goka.Context, raw []byte, pos *change.Position) deadLetterRecord {
	h := goka.Headers{
		HeaderTopic:     []byte(gctx.Topic()),
		HeaderPartition: []byte(strconv.FormatInt(int64(gctx.Partition()), 10)),
		HeaderOffset:    []byte(strconv.FormatInt(gctx.Offset(), 10)),
		HeaderGroup:     []byte(gctx.Group()),
	}
	if pos != nil {
		h[HeaderPosition] = []byte(pos.String())
	}
	return deadLetterRecord{raw: raw, key: gctx.Key(), header: h}
}

// emit writes the dead letter with cause and counts it under reason.
func (r deadLetterRecord) emit(p *Processor, dlq *goka.Emitter, reason string, cause error) error {
	h := r.header
	h[HeaderError] = []byte(cause.Error())
	if err := dlq.EmitSyncWithHeaders(r.key, r.raw, h); err != nil {
		return fmt.Errorf("dead-letter a change of %s: %w", h[HeaderTopic], err)
	}
	p.counters.deadLetter(string(h[HeaderTopic]), reason)
	p.deadLetterLog.unlogged.Add(1)
	p.deadLetterLog.Do(func() {
		p.cfg.Logger.Error("record sent to the dead-letter topic", "topology", p.topo.Name, "reason", reason,
			"topic", string(h[HeaderTopic]), "partition", string(h[HeaderPartition]), "offset", string(h[HeaderOffset]),
			"dead_letter_topic", p.cfg.DeadLetterTopic, "err", cause,
			"dead_letters_since_last_line", p.deadLetterLog.unlogged.Swap(0))
	})
	return nil
}
