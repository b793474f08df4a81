package topologies

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/cdcflow/cdcflow/change"
)

// Event is a domain event a topology derives from a change: its type
// (OrderCreated), the id of the aggregate it belongs to, and its data, a flat
// struct (see serde.DomainEvent for the field types).
type Event struct {
	Type        string
	AggregateID string
	Data        any
}

// EventID is the deterministic id of the event of type typ that the change
// at pos derived for aggregate: the same change always yields the same id,
// so consumers can deduplicate, and a replay yields the same events.
func EventID(pos change.Position, aggregate, typ string) string {
	sum := sha256.Sum256([]byte(pos.String() + "|" + aggregate + "|" + typ))
	return hex.EncodeToString(sum[:16])
}

// EventsNode derives domain events from the changes of a table and emits
// them to an event topic. Build it with [Events].
type EventsNode struct {
	input, output string
	rowType       string
	decode        func(change.Row) (any, error)
	derive        func(op change.Op, before, after any, pos change.Position, src change.Source) []Event
	encodeRow     func(any) ([]byte, error)
	decodeRow     func([]byte) (any, error)
	err           error
}

// Events declares domain events derived from table's changes, emitted to the
// topic output (e.g. "events.Order"), keyed by aggregate id. derive sees each
// change with the row's previous version as Before even when the source sent
// none (REPLICA IDENTITY DEFAULT): the processor keeps the last version of
// every row, so status transitions can be read from Before and After. A
// change is turned into events once: redelivered or replayed changes (at or
// before the last position seen for the row) derive nothing. derive must be a
// pure function of the change.
func Events[T any](table Table[T], output string, derive func(Change[T]) []Event) *EventsNode {
	n := &EventsNode{input: table.Topic, output: output, rowType: fmt.Sprintf("%T", *new(T))}
	dec, err := newRowDecoder[T]()
	switch {
	case err != nil:
		n.err = err
		return n
	case derive == nil:
		n.err = errors.New("derive function is nil")
		return n
	}
	n.decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.derive = func(op change.Op, before, after any, pos change.Position, src change.Source) []Event {
		c := Change[T]{Op: op, Position: pos, Source: src}
		if before != nil {
			b := before.(T)
			c.Before = &b
		}
		if after != nil {
			a := after.(T)
			c.After = &a
		}
		return derive(c)
	}
	n.encodeRow = func(v any) ([]byte, error) { return json.Marshal(v) }
	n.decodeRow = func(b []byte) (any, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}
	return n
}

// Input returns the change topic the node reads.
func (n *EventsNode) Input() string { return n.input }

// Output returns the event topic the node writes.
func (n *EventsNode) Output() string { return n.output }

func (n *EventsNode) describe() string {
	return fmt.Sprintf("events from %s (rows as %s) to %s", n.input, n.rowType, n.output)
}

var eventTopic = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

func (n *EventsNode) validate() error {
	if n.err != nil {
		return fmt.Errorf("events from %s: %w", n.input, n.err)
	}
	if !eventTopic.MatchString(n.output) {
		return fmt.Errorf("events from %s: output topic %q must be dot-separated names (it is the events' Avro namespace), e.g. events.Order", n.input, n.output)
	}
	return nil
}

// Row decodes a change's row into the node's row type (nil stays nil).
func (n *EventsNode) Row(r change.Row) (any, error) {
	if r == nil {
		return nil, nil
	}
	return n.decode(r)
}

// Derive runs the derive function on a change whose rows Row decoded.
func (n *EventsNode) Derive(op change.Op, before, after any, pos change.Position, src change.Source) []Event {
	return n.derive(op, before, after, pos, src)
}

// EncodeRow and DecodeRow store a row version in the processor's state.
func (n *EventsNode) EncodeRow(v any) ([]byte, error) { return n.encodeRow(v) }
func (n *EventsNode) DecodeRow(b []byte) (any, error) { return n.decodeRow(b) }
