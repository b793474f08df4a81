package topotest

import (
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
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

// eventsNode derives events as the processor's Events node does, with the
// node's own Apply: it keeps per row the position of the last change it
// turned into events and the row as of it, as the processor's group table
// does. A change at or before that position derives nothing; a later one is
// derived with the kept row as Before, or, when none is kept, the Before
// the change carries.
type eventsNode struct {
	node *engine.Events
	rows map[string]*engine.RowState // by row identity: the group table
}

func (e *eventsNode) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	h.stats.Changes++
	if ev.Op == change.OpTruncate {
		h.deadLetter(rec, fmt.Errorf("truncate of %s at %s: an Events node (the domain events of %s) keeps rows per partition and does not apply truncates; its rows of %s stay",
			ev.TableName(), ev.Position, e.node.Output, ev.TableName()))
		return nil
	}
	id := engine.RowIdentity(rec.Topic, rec.Key)
	derived, next, dup, err := e.node.Apply(e.rows[id], ev)
	if dup {
		h.stats.Duplicates++ // turned into events already
		return nil
	}
	if errors.Is(err, engine.ErrState) {
		return err
	}
	var emitted []Event
	for _, d := range derived {
		if err != nil {
			break
		}
		out := Event{Topic: e.node.Output, ID: topologies.EventID(ev.Position, d.AggregateID, d.Type), Type: d.Type,
			AggregateID: d.AggregateID, Position: ev.Position, OccurredAt: time.UnixMilli(ev.Source.TsMs).UTC(), Data: d.Data}
		// The processor encodes every event with its Avro schema, and
		// dead-letters a change whose events it cannot encode.
		de := &serde.DomainEvent{ID: out.ID, Type: out.Type, AggregateID: out.AggregateID, Position: out.Position, OccurredAt: out.OccurredAt, Data: out.Data}
		if cerr := serde.CheckEvent(out.Topic, de); cerr != nil {
			err = fmt.Errorf("encode %s of %s at %s: %w", d.Type, d.AggregateID, ev.Position, cerr)
		}
		emitted = append(emitted, out)
	}
	if next != nil {
		e.rows[id] = next
	}
	if err != nil {
		h.deadLetter(rec, err)
		return nil
	}
	h.events = append(h.events, emitted...)
	// The projections reading the output topic get the events.
	h.eventLog = append(h.eventLog, emitted...)
	return h.fold(emitted)
}
