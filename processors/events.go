package processors

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// rowState is what an Events node keeps per row in the group table: the
// position of the last change it turned into events and the row as of it.
type rowState struct {
	Position change.Position `json:"position"`
	Row      json.RawMessage `json:"row,omitempty"`
}

type rowStateCodec struct{}

func (rowStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (rowStateCodec) Decode(b []byte) (any, error) {
	var s rowState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode row state: %w", err)
	}
	return &s, nil
}

func (p *Processor) eventsCallback(n *topologies.EventsNode, enc *serde.EventEncoder) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		ev, ok := msg.(*change.Event)
		if !ok || ev == nil {
			return
		}
		p.changes.Add(1)
		prev, _ := gctx.Value().(*rowState)
		if prev != nil && ev.Position.Compare(prev.Position) <= 0 {
			p.duplicates.Add(1) // turned into events already
			return
		}
		after, err := n.Row(ev.After)
		if err != nil {
			fail(gctx, fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err))
		}
		// The row's previous version: the one kept here, else what the
		// source sent (a full before image under REPLICA IDENTITY FULL, or a
		// delete's key-only one).
		var before any
		if prev != nil && prev.Row != nil {
			if before, err = n.DecodeRow(prev.Row); err != nil {
				fail(gctx, fmt.Errorf("decode kept row of %s: %w", ev.TableName(), err))
			}
		} else if ev.Before != nil {
			if before, err = n.Row(ev.Before); err != nil {
				fail(gctx, fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err))
			}
		}
		ctx := gctx.Context()
		for _, e := range n.Derive(ev.Op, before, after, ev.Position, ev.Source) {
			de := &serde.DomainEvent{
				ID: topologies.EventID(ev.Position, e.AggregateID, e.Type), Type: e.Type, AggregateID: e.AggregateID,
				Position: ev.Position, OccurredAt: time.UnixMilli(ev.Source.TsMs), Data: e.Data,
			}
			value, err := enc.Encode(ctx, de)
			if err != nil {
				fail(gctx, fmt.Errorf("encode %s of %s at %s: %w", e.Type, e.AggregateID, ev.Position, err))
			}
			gctx.Emit(goka.Stream(n.Output()), e.AggregateID, value)
		}
		next := &rowState{Position: ev.Position}
		if after != nil {
			if next.Row, err = n.EncodeRow(after); err != nil {
				fail(gctx, fmt.Errorf("keep row of %s: %w", ev.TableName(), err))
			}
		}
		gctx.SetValue(next)
	}
}
