package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// emit publishes one output of the assembler: it encodes the records the
// output stands for and produces them into the open Kafka transaction, or
// moves the publisher's positions. Every output's records are encoded before
// any is produced, so an error wrapping [serde.ErrRegistryUnavailable] left
// nothing of the output produced: emit may be called again with it.
func (c *Capture) emit(ctx context.Context, out output) error {
	switch o := out.(type) {
	case eventOutput:
		c.observeChange(o.Table, uint32(o.Event.Source.TxID), o.Raw)
		return c.emitEvent(ctx, o)
	case transactionOutput:
		rec, err := c.enc.EncodeTransaction(ctx, o.Record)
		if err != nil {
			return fmt.Errorf("encode transaction %s record of %s: %w", o.Record.Status, o.Record.ID, err)
		}
		return c.pub.produce(ctx, o.Position, []serde.Encoded{rec})
	case messageOutput:
		rec, err := c.enc.EncodeMessage(ctx, o.Message)
		if err != nil {
			return fmt.Errorf("encode logical decoding message at %s: %w", o.Message.Source.LSN, err)
		}
		return c.pub.produce(ctx, o.Message.Position, []serde.Encoded{rec})
	case deadLetterOutput:
		c.observeChange(o.Table, o.XID, o.Raw)
		return c.publishDeadLetter(ctx, o.Table, o.LSN, o.Position, o.Raw, o.Cause)
	case watermarkOutput:
		return c.incrementalWatermark(ctx, o)
	case signalOutput:
		return c.applySignal(o)
	case skippedOutput:
		c.countSkipped()
	case commitOutput:
		if !o.CommitTime.IsZero() {
			c.metrics.commitTime.Set(float64(o.CommitTime.UnixMilli()) / 1000)
			c.ctl.observe(func(ctl *control) { ctl.commitTime = o.CommitTime })
		}
		return c.pub.sourceCommitted(ctx, o.End)
	case lastCommitOutput:
		c.pub.lastCommit = o.LSN
	default:
		return fmt.Errorf("unknown assembler output %T", out)
	}
	return nil
}

// emitEvent encodes a change event (and the tombstone after a delete) and
// produces it. An event with no Avro form, or whose schema the registry
// rejects, goes to the dead-letter topic instead.
func (c *Capture) emitEvent(ctx context.Context, o eventOutput) error {
	t, ev := o.Table, o.Event
	rec, err := c.enc.Encode(ctx, t, ev)
	var valueErr *serde.ValueError
	if errors.As(err, &valueErr) || errors.Is(err, serde.ErrSchemaRejected) {
		return c.publishDeadLetter(ctx, t, o.LSN, ev.Position, o.Raw, err)
	}
	if err != nil {
		return fmt.Errorf("encode change at %s to %s: %w", o.LSN, t, err)
	}
	if ev.Op == change.OpTruncate {
		c.metrics.events.WithLabelValues(t.String(), ev.Op.String()).Inc()
		return c.produceTruncate(ctx, ev.Position, rec)
	}
	records := []serde.Encoded{rec}
	if ev.Op == change.OpDelete && !c.cfg.NoTombstones {
		tomb, err := c.enc.Tombstone(ctx, t, ev)
		if err != nil {
			return fmt.Errorf("encode tombstone at %s to %s: %w", o.LSN, t, err)
		}
		records = append(records, tomb)
	}
	c.metrics.events.WithLabelValues(t.String(), ev.Op.String()).Inc()
	return c.pub.produce(ctx, ev.Position, records)
}

func (c *Capture) countSkipped() {
	c.skipped.Add(1)
	c.metrics.skipped.Inc()
}

// publishDeadLetter writes a change capture cannot encode to the dead-letter
// topic, in the same Kafka transaction as the changes around it: the row in
// PostgreSQL's text form as JSON, the error and the source position in
// headers. Capture goes on with the next change.
func (c *Capture) publishDeadLetter(ctx context.Context, t *change.Table, lsn change.LSN, pos change.Position, raw rawChange, cause error) error {
	rec, err := c.deadLetter(t, lsn, pos, raw, cause)
	if err != nil {
		return err
	}
	return c.pub.produce(ctx, pos, []serde.Encoded{rec})
}

// deadLetter is the dead-letter record of a change capture cannot encode;
// it logs and counts it.
func (c *Capture) deadLetter(t *change.Table, lsn change.LSN, pos change.Position, raw rawChange, cause error) (serde.Encoded, error) {
	raw = raw.text()
	raw.Position, raw.LSN, raw.Error = pos.String(), lsn.String(), cause.Error()
	value, err := json.Marshal(raw)
	if err != nil {
		return serde.Encoded{}, err
	}
	c.deadLettered.Add(1)
	c.metrics.deadLetters.WithLabelValues(t.String()).Inc()
	c.log.Warn("change sent to the dead-letter topic", "table", t.String(), "position", pos.String(), "lsn", lsn.String(),
		"topic", c.cfg.DeadLetterTopic, "err", cause)
	return serde.Encoded{
		Topic: c.cfg.DeadLetterTopic, Key: []byte(t.String()), Value: value,
		Headers: []serde.Header{
			{Key: "cdcflow.error", Value: []byte(cause.Error())},
			{Key: "cdcflow.position", Value: []byte(pos.String())},
			{Key: "cdcflow.lsn", Value: []byte(lsn.String())},
			{Key: "cdcflow.table", Value: []byte(t.String())},
			{Key: "cdcflow.topic", Value: []byte(serde.Topic(c.cfg.TopicPrefix, t.Schema, t.Name))},
		},
	}, nil
}

// Backoff between attempts at encoding while the schema registry is
// unavailable.
const (
	firstRegistryBackoff = 100 * time.Millisecond
	maxRegistryBackoff   = 5 * time.Second
)

// registryOutage paces the attempts at encoding while the schema registry
// is unavailable: capture cannot register the schema of a table it sees
// for the first time, or anew after an ALTER TABLE, and waits until it can,
// however long that takes. The zero value is a registry that answers.
type registryOutage struct {
	since   time.Time     // the first failure; zero while the registry answers
	backoff time.Duration // the wait after the last failure
	retryAt time.Time     // when to try again
}

// registryFailed records that encoding failed with err, an error wrapping
// [serde.ErrRegistryUnavailable], and sets when to try again: 100ms after
// the first failure, twice as long after each next one, up to 5s. It commits
// the open Kafka transaction first, so that what was produced before is not
// held open for the outage (the broker would abort a transaction open
// longer than its timeout).
func (c *Capture) registryFailed(ctx context.Context, o *registryOutage, err error) error {
	if o.since.IsZero() {
		o.since, o.backoff = time.Now(), firstRegistryBackoff
	} else {
		o.backoff = min(2*o.backoff, maxRegistryBackoff)
	}
	o.retryAt = time.Now().Add(o.backoff)
	c.metrics.retries.WithLabelValues("registry").Inc()
	c.log.Warn("schema registry unavailable; retrying", "err", err, "backoff", o.backoff, "unavailable_for", time.Since(o.since).Round(time.Millisecond))
	if err := c.pub.commit(ctx); err != nil {
		return fmt.Errorf("commit before waiting for the schema registry: %w", err)
	}
	return nil
}

// registryAnswered ends an outage, if there was one.
func (c *Capture) registryAnswered(o *registryOutage) {
	if o.since.IsZero() {
		return
	}
	c.log.Info("schema registry available again", "unavailable_for", time.Since(o.since).Round(time.Millisecond))
	*o = registryOutage{}
}

// encodeSnapshotRow is Encoder.Encode for a snapshot read, waiting with
// backoff for as long as the schema registry is unavailable, or until ctx
// ends.
func (c *Capture) encodeSnapshotRow(ctx context.Context, t *change.Table, ev *change.Event) (serde.Encoded, error) {
	var rec serde.Encoded
	err := c.waitForRegistry(ctx, func() error {
		var err error
		rec, err = c.enc.Encode(ctx, t, ev)
		return err
	})
	return rec, err
}

// waitForRegistry calls f until it returns an error other than one
// wrapping serde.ErrRegistryUnavailable, waiting with backoff in between,
// or until ctx ends.
func (c *Capture) waitForRegistry(ctx context.Context, f func() error) error {
	var outage registryOutage
	for {
		err := f()
		if !errors.Is(err, serde.ErrRegistryUnavailable) {
			c.registryAnswered(&outage)
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		if err := c.registryFailed(ctx, &outage, err); err != nil {
			return err
		}
		sleep(ctx, time.Until(outage.retryAt))
	}
}
