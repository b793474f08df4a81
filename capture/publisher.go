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
type publisher struct {
	kafka       *kgo.Client
	ckptTopic   string
	ckptKey     string
	maxRecords  int
	maxDuration time.Duration

	open      bool      // a Kafka transaction is open
	records   int       // change records in the open transaction
	began     time.Time // when the open transaction began
	last      change.Position
	complete  change.LSN     // end of the last source transaction all of whose changes were produced
	durable   change.LSN     // end of the last source transaction all of whose changes are committed
	snapshot  *SnapshotState // written with every checkpoint; capture updates it
	committed func()         // called after each committed transaction

	mu  sync.Mutex
	err error // the first failed record
}

func newPublisher(kafka *kgo.Client, ckptTopic, ckptKey string, maxRecords int, maxDuration time.Duration, resume Checkpoint) *publisher {
	return &publisher{
		kafka: kafka, ckptTopic: ckptTopic, ckptKey: ckptKey,
		maxRecords: maxRecords, maxDuration: maxDuration,
		last: resume.Position, complete: resume.Confirm, durable: resume.Confirm, snapshot: resume.Snapshot,
	}
}

// produce adds the records of the change at pos to the open transaction,
// opening one if needed, and commits when the transaction is full.
func (p *publisher) produce(ctx context.Context, pos change.Position, recs []serde.Encoded) error {
	if err := p.failed(); err != nil {
		return err
	}
	if !p.open {
		if err := p.kafka.BeginTransaction(); err != nil {
			return fmt.Errorf("begin Kafka transaction: %w", err)
		}
		p.open, p.records, p.began = true, 0, time.Now()
	}
	for _, r := range recs {
		rec := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		p.kafka.Produce(ctx, rec, p.produced)
	}
	p.records++
	p.last = pos
	if p.records >= p.maxRecords {
		return p.commit(ctx)
	}
	return nil
}

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
	p.complete = end
	if !p.open {
		p.durable = end // nothing of it is in flight
		return nil
	}
	return p.maybeCommit(ctx)
}

// maybeCommit commits the open transaction once it is old enough.
func (p *publisher) maybeCommit(ctx context.Context) error {
	if p.open && time.Since(p.began) >= p.maxDuration {
		return p.commit(ctx)
	}
	return nil
}

// commit writes the checkpoint and commits the open transaction.
func (p *publisher) commit(ctx context.Context) error {
	if !p.open {
		return nil
	}
	ckpt, err := json.Marshal(Checkpoint{Position: p.last, Confirm: p.complete, Snapshot: p.snapshot})
	if err != nil {
		return err
	}
	p.kafka.Produce(ctx, &kgo.Record{Topic: p.ckptTopic, Key: []byte(p.ckptKey), Value: ckpt}, p.produced)
	if err := p.kafka.Flush(ctx); err != nil {
		return p.abort(fmt.Errorf("flush Kafka transaction: %w", err))
	}
	if err := p.failed(); err != nil {
		return p.abort(fmt.Errorf("produce to Kafka: %w", err))
	}
	if err := p.kafka.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return p.abort(fmt.Errorf("commit Kafka transaction: %w", err))
	}
	p.open = false
	p.durable = p.complete
	if p.committed != nil {
		p.committed()
	}
	return nil
}

// abort gives up the open transaction after cause; nothing of it becomes
// visible, and the slot stays where it was confirmed.
func (p *publisher) abort(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.open = false
	abortErr := p.kafka.AbortBufferedRecords(ctx)
	if err := p.kafka.EndTransaction(ctx, kgo.TryAbort); err != nil {
		abortErr = errors.Join(abortErr, err)
	}
	if abortErr != nil {
		return errors.Join(cause, fmt.Errorf("abort Kafka transaction: %w", abortErr))
	}
	return cause
}
