package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

// publisher writes change records to Kafka in transactions, each ending with
// a checkpoint record in the same transaction, so that the records and the
// position they reach become visible to read_committed consumers together, or
// not at all. It batches source transactions into one Kafka transaction and
// splits a large source transaction across several (the checkpoint's position
// then points inside it). It is used from one goroutine.
//
// A transaction commits in the background: while Kafka flushes and commits
// one, capture goes on reading, and the publisher holds the records of the
// next one (Kafka takes records only inside a transaction) and produces them
// once the commit ended. One commit runs at a time, so at most two
// transactions' records are in memory; each checkpoint covers exactly the
// records of its own transaction. durable moves when a commit ended; a
// failed commit aborts its transaction, and the next call returns the error.
type publisher struct {
	kafka       *kgo.Client
	ckptTopic   string
	ckptKey     string
	maxRecords  int
	maxDuration time.Duration

	open     bool          // a transaction is open: records, or a state change, since the last commit began
	inKafka  bool          // the open transaction began in Kafka
	held     []*kgo.Record // records of the open transaction not produced yet: the last commit runs
	records  int           // change records in the open transaction
	began    time.Time     // when the open transaction began
	last     change.Position
	complete change.LSN // end of the last source transaction all of whose changes were produced
	durable  change.LSN // end of the last source transaction all of whose changes are committed
	// committing receives the end of the commit running in the background;
	// nil when none runs.
	committing chan commitResult
	snapshot   *SnapshotState // written with every checkpoint; capture updates it
	// committed is called after each committed transaction, with the
	// position its checkpoint holds.
	committed func(change.Position)

	// Written with every checkpoint too; capture replaces them (see
	// Checkpoint).
	incremental *IncrementalState
	lastSignal  *change.Position
	slotLost    *SlotLoss

	// lastCommit is the end of the last source transaction (or
	// non-transactional message) read: the first LSN of source.sequence.
	lastCommit change.LSN

	mu  sync.Mutex
	err error // the first failed record
}

// commitResult is how a background commit ended, and what it covered.
type commitResult struct {
	err     error
	durable change.LSN      // the transaction's checkpoint's Confirm
	last    change.Position // the transaction's checkpoint's Position
}

func newPublisher(kafka *kgo.Client, ckptTopic, ckptKey string, maxRecords int, maxDuration time.Duration, resume Checkpoint) *publisher {
	return &publisher{
		kafka: kafka, ckptTopic: ckptTopic, ckptKey: ckptKey,
		maxRecords: maxRecords, maxDuration: maxDuration,
		last: resume.Position, complete: resume.Confirm, durable: resume.Confirm, snapshot: resume.Snapshot,
		lastCommit: resume.LastCommit, incremental: resume.Incremental, lastSignal: resume.LastSignal, slotLost: resume.SlotLost,
	}
}

// produce adds the records of the change at pos to the open transaction,
// opening one if needed, and commits when the transaction is full.
func (p *publisher) produce(ctx context.Context, pos change.Position, recs []serde.Encoded) error {
	return p.produceChanges(ctx, pos, recs, 1)
}

// produceChanges is produce for the records of n changes that must be
// committed together, and with the checkpoint state set before: the
// transaction is committed when full only after all of them.
func (p *publisher) produceChanges(ctx context.Context, pos change.Position, recs []serde.Encoded, n int) error {
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		rec := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		krecs[i] = rec
	}
	return p.produceRecords(ctx, pos, krecs, n)
}

// produceRecords is produceChanges for records ready for Kafka.
func (p *publisher) produceRecords(ctx context.Context, pos change.Position, recs []*kgo.Record, n int) error {
	if err := p.begin(); err != nil {
		return err
	}
	if p.committing != nil {
		p.held = append(p.held, recs...)
	} else {
		if err := p.beginKafka(ctx); err != nil {
			return err
		}
		for _, rec := range recs {
			p.kafka.Produce(ctx, rec, p.produced)
		}
	}
	p.records += n
	p.last = pos
	if p.records >= p.maxRecords {
		return p.startCommit(ctx)
	}
	return nil
}

// begin opens a transaction unless one is open, after taking in the end
// of the last commit if it ended.
func (p *publisher) begin() error {
	if err := p.failed(); err != nil {
		return err
	}
	if err := p.poll(); err != nil {
		return err
	}
	if !p.open {
		p.open, p.records, p.began = true, 0, time.Now()
	}
	return nil
}

// beginKafka begins the open transaction in Kafka, unless it did, and
// produces the records held for it. No commit may be running.
func (p *publisher) beginKafka(ctx context.Context) error {
	if p.inKafka {
		return nil
	}
	if err := p.kafka.BeginTransaction(); err != nil {
		return fmt.Errorf("begin Kafka transaction: %w", err)
	}
	p.inKafka = true
	for i, rec := range p.held {
		p.kafka.Produce(ctx, rec, p.produced)
		p.held[i] = nil
	}
	p.held = p.held[:0]
	return nil
}

// stateChanged makes sure the checkpoint state capture just changed (a
// signal acted on, a table's incremental snapshot finished) is committed
// before the slot is confirmed past the source transaction that changed
// it: it opens a transaction, which commits the checkpoint even with no
// records.
func (p *publisher) stateChanged() error { return p.begin() }

func (p *publisher) produced(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *publisher) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// sourceCommitted records that every change of the source transaction ending
// at end was produced.
func (p *publisher) sourceCommitted(ctx context.Context, end change.LSN) error {
	p.complete, p.lastCommit = end, end
	if !p.open {
		if p.committing == nil {
			p.durable = end // nothing of it is in flight
		}
		return p.poll() // the commit's end moves durable to end
	}
	return p.maybeCommit(ctx)
}

// maybeCommit takes in the end of the last commit if it ended, and starts
// committing the open transaction once it is old enough.
func (p *publisher) maybeCommit(ctx context.Context) error {
	if err := p.poll(); err != nil {
		return err
	}
	if p.open && time.Since(p.began) >= p.maxDuration {
		return p.startCommit(ctx)
	}
	return nil
}

// commit writes the checkpoint, commits the open transaction and waits
// until it, and the one before, are committed.
func (p *publisher) commit(ctx context.Context) error {
	if err := p.startCommit(ctx); err != nil {
		return err
	}
	return p.settle()
}

// startCommit writes the checkpoint and starts committing the open
// transaction in the background, after the commit before ended.
func (p *publisher) startCommit(ctx context.Context) error {
	if !p.open {
		return nil
	}
	if err := p.settle(); err != nil {
		return err
	}
	ckpt, err := json.Marshal(Checkpoint{Position: p.last, Confirm: p.complete, LastCommit: p.lastCommit, Snapshot: p.snapshot,
		Incremental: p.incremental, LastSignal: p.lastSignal, SlotLost: p.slotLost})
	if err != nil {
		return err
	}
	if err := p.beginKafka(ctx); err != nil {
		return err
	}
	p.kafka.Produce(ctx, &kgo.Record{Topic: p.ckptTopic, Key: []byte(p.ckptKey), Value: ckpt}, p.produced)
	done := make(chan commitResult, 1)
	go func(durable change.LSN, last change.Position) {
		done <- commitResult{err: p.finish(ctx), durable: durable, last: last}
	}(p.complete, p.last)
	p.committing, p.open, p.inKafka = done, false, false
	return nil
}

// finish flushes and commits the transaction begun in Kafka, or aborts it
// if a record failed. It runs alone on the client, in the background.
func (p *publisher) finish(ctx context.Context) error {
	if err := p.kafka.Flush(ctx); err != nil {
		return p.abortKafka(fmt.Errorf("flush Kafka transaction: %w", err))
	}
	if err := p.failed(); err != nil {
		return p.abortKafka(fmt.Errorf("produce to Kafka: %w", err))
	}
	if err := p.kafka.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return p.abortKafka(fmt.Errorf("commit Kafka transaction: %w", err))
	}
	return nil
}

// poll takes in the end of the running commit, if it ended.
func (p *publisher) poll() error {
	select {
	case r := <-p.committing: // never ready while committing is nil
		return p.ended(r)
	default:
		return nil
	}
}

// settle waits until the running commit, if any, ended.
func (p *publisher) settle() error {
	if p.committing == nil {
		return nil
	}
	return p.ended(<-p.committing)
}

// ended takes in the end of the running commit: it moves durable, or,
// after a failure, drops the open transaction (nothing of it reached
// Kafka) and returns the error.
func (p *publisher) ended(r commitResult) error {
	p.committing = nil
	if r.err != nil {
		p.open, p.records = false, 0
		clear(p.held)
		p.held = p.held[:0]
		return r.err
	}
	p.durable = r.durable
	if !p.open {
		p.durable = p.complete // every change produced was in that transaction
	}
	if p.committed != nil {
		p.committed(r.last)
	}
	return nil
}

// abort gives up the open transaction after cause, once the running commit
// ended; nothing of the open transaction becomes visible, and the slot
// stays where it was confirmed.
func (p *publisher) abort(cause error) error {
	if p.committing != nil {
		if err := p.settle(); err != nil && !errors.Is(cause, err) {
			cause = errors.Join(cause, err)
		}
	}
	open := p.open && p.inKafka
	p.open, p.inKafka, p.records = false, false, 0
	clear(p.held)
	p.held = p.held[:0]
	if !open {
		return cause
	}
	return p.abortKafka(cause)
}

// abortKafka aborts the transaction begun in Kafka after cause.
func (p *publisher) abortKafka(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	abortErr := p.kafka.AbortBufferedRecords(ctx)
	if err := p.kafka.EndTransaction(ctx, kgo.TryAbort); err != nil {
		abortErr = errors.Join(abortErr, err)
	}
	if abortErr != nil {
		return errors.Join(cause, fmt.Errorf("abort Kafka transaction: %w", abortErr))
	}
	return cause
}
