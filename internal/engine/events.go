package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// Event is a domain event an [Events] node derived: its type (the name of
// its data's Go type), the aggregate it belongs to, and its data.
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

// Events derives domain events from the changes of a table and emits them to
// an event topic.
type Events struct {
	Input, Output string
	// Debezium marks an Input another Debezium connector writes.
	Debezium bool
	RowType  string
	// Types are the event types the output topic declares, by name.
	Types map[string]bool
	// Decode reads a change's row into the user's row type; Derive is the
	// user's derive function over the decoded rows (nil for none).
	Decode func(change.Row) (any, error)
	Derive func(op change.Op, before, after any, pos change.Position, src change.Source) []Event
	// EncodeRow and DecodeRow keep a decoded row in the row state.
	EncodeRow func(any) ([]byte, error)
	DecodeRow func([]byte) (any, error)
	Err       error
}

// Describe implements Node.
func (n *Events) Describe() string {
	return fmt.Sprintf("events from %s (rows as %s) to %s", n.Input, n.RowType, n.Output)
}

// Validate implements Node.
func (n *Events) Validate() error {
	if n.Err != nil {
		return fmt.Errorf("events from %s: %w", n.Input, n.Err)
	}
	return nil
}

// Run implements Node.
func (n *Events) Run(rt Runtime) error { return rt.Events(n) }

// RowState is what an Events node keeps per row: the position of the last
// change it turned into events, the row as of it (nil once deleted), and
// the events that change derived, encoded: its outbox.
//
// The outbox is written with the row in one table record, so a change's
// events are kept exactly when the change is; a relay publishes them from
// the table topic to the event topic (processors' relay, in a Kafka
// transaction with its offsets). Each state holds only its own change's
// events: the relay reads every version of a row's state in order.
type RowState struct {
	Position change.Position `json:"position"`
	Row      json.RawMessage `json:"row,omitempty"`
	Outbox   []OutboxEvent   `json:"outbox,omitempty"`
}

// An OutboxEvent is an event waiting in a row state to be published: its
// deterministic id ([EventID]), the topic and key it goes to, and its
// encoded value.
type OutboxEvent struct {
	ID    string `json:"id"`
	Topic string `json:"topic"`
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// ErrState marks an error in a node's kept state (a row state that no
// longer decodes): not a fact about the change being applied, so a runtime
// stops on it rather than set the change aside.
var ErrState = errors.New("kept state unreadable")

// Apply turns ev, a change of the row whose kept state is prev (nil for
// none), into events: dup is true when ev is at or before prev's position
// (turned into events already), and then nothing else is returned. next is
// the row's new state. The row's previous version is the one kept, else the
// before image the change carries. An error wrapping [ErrState] is about
// prev; any other is about ev (a row that does not fit the row type, an
// event of a type the output topic does not declare).
func (n *Events) Apply(prev *RowState, ev *change.Event) (events []Event, next *RowState, dup bool, err error) {
	if n.Decode == nil {
		return nil, nil, false, n.Validate()
	}
	if prev != nil && ev.Position.Compare(prev.Position) <= 0 {
		return nil, nil, true, nil
	}
	after, err := n.row(ev.After)
	if err != nil {
		return nil, nil, false, fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	var before any
	if prev != nil && prev.Row != nil {
		if before, err = n.DecodeRow(prev.Row); err != nil {
			return nil, nil, false, fmt.Errorf("%w: decode kept row of %s: %w", ErrState, ev.TableName(), err)
		}
	} else if before, err = n.row(ev.Before); err != nil {
		return nil, nil, false, fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	next = &RowState{Position: ev.Position}
	if after != nil {
		if next.Row, err = n.EncodeRow(after); err != nil {
			return nil, nil, false, fmt.Errorf("keep row of %s: %w", ev.TableName(), err)
		}
	}
	events = n.Derive(ev.Op, before, after, ev.Position, ev.Source)
	for _, e := range events {
		if !n.Types[e.Type] {
			return nil, next, false, fmt.Errorf("the change at %s of %s derived an event of type %q, which event topic %s does not declare (it declares %s); derive events of the declared types, or declare the type with EventTopicOf",
				ev.Position, ev.TableName(), e.Type, n.Output, strings.Join(slices.Sorted(maps.Keys(n.Types)), ", "))
		}
		if e.AggregateID == "" {
			return nil, next, false, fmt.Errorf("the change at %s of %s derived an event of type %s without an aggregate id", ev.Position, ev.TableName(), e.Type)
		}
	}
	return events, next, false, nil
}

func (n *Events) row(r change.Row) (any, error) {
	if r == nil {
		return nil, nil
	}
	return n.Decode(r)
}
