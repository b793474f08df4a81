package topotest

import (
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
)

// Event is a domain event an Events node emitted, as it travels on its
// topic (see serde.DomainEvent), with Data as the derive function returned
// it.
type Event struct {
	Topic       string // the node's output topic; the record's key is AggregateID
	ID          string // topologies.EventID(Position, AggregateID, Type)
	Type        string
	AggregateID string
	Position    change.Position // of the change it was derived from
	OccurredAt  time.Time       // the change's commit time (CommittedAt)
	Data        any
}

// Events returns the events emitted so far, in order.
func (h *Harness) Events() []Event { return append([]Event(nil), h.events...) }

// eventsNode derives events as the processor's Events node does: it keeps
// per row the position of the last change it turned into events and the row
// as of it (through EncodeRow and DecodeRow, as in the processor's group
// table). A change at or before that position derives nothing; a later one
// is derived with the kept row as Before, or, when none is kept, the Before
// the change carries.
type eventsNode struct {
	node *topologies.EventsNode
	rows map[string]rowState // by row identity: the group table
}

type rowState struct {
	pos change.Position
	row []byte // nil once the row is deleted
}

func (e *eventsNode) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	h.stats.Changes++
	id := identity(rec.Topic, rec.Key)
	prev, seen := e.rows[id]
	if seen && ev.Position.Compare(prev.pos) <= 0 {
		h.stats.Duplicates++ // turned into events already
		return nil
	}
	after, err := e.node.Row(ev.After)
	if err != nil {
		return fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	var before any
	if seen && prev.row != nil {
		if before, err = e.node.DecodeRow(prev.row); err != nil {
			return fmt.Errorf("decode kept row of %s: %w", ev.TableName(), err)
		}
	} else if ev.Before != nil {
		if before, err = e.node.Row(ev.Before); err != nil {
			return fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err)
		}
	}
	var emitted []Event
	for _, d := range e.node.Derive(ev.Op, before, after, ev.Position, ev.Source) {
		out := Event{Topic: e.node.Output(), ID: topologies.EventID(ev.Position, d.AggregateID, d.Type), Type: d.Type,
			AggregateID: d.AggregateID, Position: ev.Position, OccurredAt: time.UnixMilli(ev.Source.TsMs).UTC(), Data: d.Data}
		// The processor encodes every event with its Avro schema, and stops
		// on one it cannot encode.
		de := &serde.DomainEvent{ID: out.ID, Type: out.Type, AggregateID: out.AggregateID, Position: out.Position, OccurredAt: out.OccurredAt, Data: out.Data}
		if err := serde.CheckEvent(out.Topic, de); err != nil {
			return fmt.Errorf("encode %s of %s at %s: %w", d.Type, d.AggregateID, ev.Position, err)
		}
		emitted = append(emitted, out)
	}
	next := rowState{pos: ev.Position}
	if after != nil {
		if next.row, err = e.node.EncodeRow(after); err != nil {
			return fmt.Errorf("keep row of %s: %w", ev.TableName(), err)
		}
	}
	h.events = append(h.events, emitted...)
	e.rows[id] = next
	// The projections reading the output topic get the events.
	h.eventLog = append(h.eventLog, emitted...)
	return h.fold(emitted)
}
