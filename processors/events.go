package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/lovoo/goka"
)

// rowStateCodec is the codec of an Events node's group table: an
// engine.RowState per row, as JSON.
type rowStateCodec struct{}

func (rowStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (rowStateCodec) Decode(b []byte) (any, error) {
	var s engine.RowState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode row state: %w", err)
	}
	return &s, nil
}

// eventsCallback turns each change of n's table into domain events, once
// (engine.Events.Apply, with the row state kept per key in the group
// table), and puts them, encoded, in the row state's outbox: the state and
// its events are one table record, written or not together, and the relay
// (relay.go) publishes them to n's event topic in a Kafka transaction with
// its offsets. On goka's tester, which has no transactions, the callback
// emits them itself. A change whose row does not fit n's row type, or whose
// events cannot be encoded, goes to the dead-letter topic, and the row
// state moves on; a registry that cannot be asked is waited for; a row
// state that no longer decodes stops the processor.
func (p *Processor) eventsCallback(n *engine.Events, enc *serde.EventEncoder) func(goka.Context, changeRecord) {
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		p.counters.change()
		if isTruncate(ev) {
			p.truncateUnapplicable(gctx, rec, "an Events node (the domain events of "+n.Output+")")
			return
		}
		prev, _ := gctx.Value().(*engine.RowState)
		events, next, dup, err := n.Apply(prev, ev)
		switch {
		case dup:
			p.counters.duplicate() // turned into events already
			return
		case errors.Is(err, engine.ErrState):
			p.fail(gctx, err)
		}
		var outbox []engine.OutboxEvent
		for _, e := range events {
			if err != nil {
				break
			}
			id := engine.EventID(ev.Position, e.AggregateID, e.Type)
			de := &serde.DomainEvent{
				ID: id, Type: e.Type, AggregateID: e.AggregateID,
				Position: ev.Position, OccurredAt: time.UnixMilli(ev.Source.TsMs), Data: e.Data,
			}
			var value []byte
			err = p.whileRegistryUnavailable(gctx, func(ctx context.Context) (err error) {
				value, err = enc.Encode(ctx, de)
				return err
			})
			if err != nil {
				err = fmt.Errorf("encode %s of %s at %s: %w", e.Type, e.AggregateID, ev.Position, err)
			}
			outbox = append(outbox, engine.OutboxEvent{ID: id, Topic: n.Output, Key: e.AggregateID, Value: value})
		}
		if err != nil {
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, err)
		} else if len(outbox) > 0 {
			next.Outbox = outbox
			if p.cfg.Tester != nil {
				for _, e := range outbox {
					gctx.Emit(goka.Stream(e.Topic), e.Key, e.Value)
				}
			}
			p.counters.applied(ev.Source.TsMs)
		}
		if next != nil {
			gctx.SetValue(next)
		}
	}
}
