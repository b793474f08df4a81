package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

// testRow is the row type of the Events node of these tests.
type testRow struct {
	ID     int64
	Status string
}

type statusChanged struct{ From, To string }

// testEvents returns an Events node over testRow whose derive records what
// it saw in seen and returns derive's events.
func testEvents(seen *[][2]any, derive func(before, after *testRow) []Event) *Events {
	return &Events{
		Input: "shop.public.orders", Output: "events.Order", RowType: "engine.testRow",
		Types: map[string]bool{"statusChanged": true},
		Decode: func(r change.Row) (any, error) {
			id, ok := r["id"].(int64)
			if !ok {
				return nil, fmt.Errorf("column id is %T, not int64", r["id"])
			}
			s, _ := r["status"].(string)
			return testRow{ID: id, Status: s}, nil
		},
		Derive: func(_ change.Op, before, after any, _ change.Position, _ change.Source) []Event {
			var b, a *testRow
			if before != nil {
				r := before.(testRow)
				b = &r
			}
			if after != nil {
				r := after.(testRow)
				a = &r
			}
			*seen = append(*seen, [2]any{b, a})
			return derive(b, a)
		},
		EncodeRow: func(v any) ([]byte, error) { return json.Marshal(v) },
		DecodeRow: func(b []byte) (any, error) {
			var r testRow
			err := json.Unmarshal(b, &r)
			return r, err
		},
	}
}

// TestEventsApply: a change is turned into events once, with the kept row
// as its Before; what cannot be emitted is an error about the change, and a
// kept row that does not decode one about the state ([ErrState]).
func TestEventsApply(t *testing.T) {
	pos := func(lsn change.LSN) change.Position { return change.Position{CommitLSN: lsn, Index: 1} }
	keep := func(lsn change.LSN, r *testRow) *RowState {
		st := &RowState{Position: pos(lsn)}
		if r != nil {
			st.Row, _ = json.Marshal(r)
		}
		return st
	}
	transition := func(b, a *testRow) []Event {
		var from, to string
		if b != nil {
			from = b.Status
		}
		if a != nil {
			to = a.Status
		}
		return []Event{{Type: "statusChanged", AggregateID: "1", Data: statusChanged{from, to}}}
	}
	newRow, paidRow := &testRow{ID: 1, Status: "new"}, &testRow{ID: 1, Status: "paid"}
	for _, tc := range []struct {
		name       string
		derive     func(b, a *testRow) []Event
		prev       *RowState
		ev         *change.Event
		wantSeen   [][2]any // what derive saw: before, after
		wantEvents []Event
		wantNext   *RowState
		wantDup    bool
		wantErr    string
		wantState  bool // the error is about the kept state
	}{
		{name: "an insert", derive: transition,
			ev:         &change.Event{Op: change.OpCreate, Position: pos(2), After: change.Row{"id": int64(1), "status": "new"}},
			wantSeen:   [][2]any{{(*testRow)(nil), newRow}},
			wantEvents: []Event{{Type: "statusChanged", AggregateID: "1", Data: statusChanged{"", "new"}}},
			wantNext:   keep(2, newRow)},
		{name: "an update without a before image, the row kept", derive: transition, prev: keep(2, newRow),
			ev:         &change.Event{Op: change.OpUpdate, Position: pos(3), After: change.Row{"id": int64(1), "status": "paid"}},
			wantSeen:   [][2]any{{newRow, paidRow}},
			wantEvents: []Event{{Type: "statusChanged", AggregateID: "1", Data: statusChanged{"new", "paid"}}},
			wantNext:   keep(3, paidRow)},
		{name: "an update with a before image, no row kept", derive: transition,
			ev: &change.Event{Op: change.OpUpdate, Position: pos(3), Before: change.Row{"id": int64(1), "status": "new"},
				After: change.Row{"id": int64(1), "status": "paid"}},
			wantSeen:   [][2]any{{newRow, paidRow}},
			wantEvents: []Event{{Type: "statusChanged", AggregateID: "1", Data: statusChanged{"new", "paid"}}},
			wantNext:   keep(3, paidRow)},
		{name: "the kept row before the change's before image", derive: transition, prev: keep(2, newRow),
			ev:         &change.Event{Op: change.OpDelete, Position: pos(3), Before: change.Row{"id": int64(1)}},
			wantSeen:   [][2]any{{newRow, (*testRow)(nil)}},
			wantEvents: []Event{{Type: "statusChanged", AggregateID: "1", Data: statusChanged{"new", ""}}},
			wantNext:   keep(3, nil)},
		{name: "a redelivery", derive: transition, prev: keep(3, paidRow),
			ev:      &change.Event{Op: change.OpUpdate, Position: pos(3), After: change.Row{"id": int64(1), "status": "paid"}},
			wantDup: true},
		{name: "an older change", derive: transition, prev: keep(3, paidRow),
			ev:      &change.Event{Op: change.OpUpdate, Position: pos(2), After: change.Row{"id": int64(1), "status": "new"}},
			wantDup: true},
		{name: "an undeclared event type", prev: keep(2, newRow),
			derive: func(b, a *testRow) []Event {
				return append(transition(b, a), Event{Type: "OrderNoted", AggregateID: "1"})
			},
			ev:       &change.Event{Op: change.OpUpdate, Position: pos(3), After: change.Row{"id": int64(1), "status": "paid"}},
			wantSeen: [][2]any{{newRow, paidRow}},
			wantNext: keep(3, paidRow),
			wantErr:  "the change at 0000000000000003/00000001 of public.orders derived an event of type \"OrderNoted\", which event topic events.Order does not declare (it declares statusChanged); derive events of the declared types, or declare the type with EventTopicOf"},
		{name: "an event without an aggregate id",
			derive:   func(*testRow, *testRow) []Event { return []Event{{Type: "statusChanged"}} },
			ev:       &change.Event{Op: change.OpCreate, Position: pos(2), After: change.Row{"id": int64(1), "status": "new"}},
			wantSeen: [][2]any{{(*testRow)(nil), newRow}},
			wantNext: keep(2, newRow),
			wantErr:  "derived an event of type statusChanged without an aggregate id"},
		{name: "a row that does not decode", derive: transition, prev: keep(2, newRow),
			ev:      &change.Event{Op: change.OpUpdate, Position: pos(3), After: change.Row{"id": "one"}},
			wantErr: "decode change at 0000000000000003/00000001 of public.orders: column id is string, not int64"},
		{name: "a kept row that does not decode", derive: transition, prev: &RowState{Position: pos(2), Row: json.RawMessage(`[]`)},
			ev:      &change.Event{Op: change.OpUpdate, Position: pos(3), After: change.Row{"id": int64(1), "status": "paid"}},
			wantErr: "kept state unreadable: decode kept row of public.orders", wantState: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen [][2]any
			n := testEvents(&seen, tc.derive)
			tc.ev.Source = change.Source{Schema: "public", Table: "orders"}
			events, next, dup, err := n.Apply(tc.prev, tc.ev)
			if (err != nil) != (tc.wantErr != "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrState) != tc.wantState {
				t.Fatalf("err = %v: about the kept state %v, want %v", err, !tc.wantState, tc.wantState)
			}
			if err != nil && events != nil {
				t.Fatalf("events %+v with an error", events)
			}
			if dup != tc.wantDup || !reflect.DeepEqual(events, tc.wantEvents) || !reflect.DeepEqual(next, tc.wantNext) {
				t.Fatalf("Apply = %+v, %+v, %v; want %+v, %+v, %v", events, next, dup, tc.wantEvents, tc.wantNext, tc.wantDup)
			}
			if !reflect.DeepEqual(seen, tc.wantSeen) {
				t.Fatalf("derive saw %v, want %v", seen, tc.wantSeen)
			}
		})
	}
}

func TestEventsApplyOfAnInvalidNode(t *testing.T) {
	n := &Events{Input: "shop.public.orders", Err: errors.New("derive function is nil")}
	if _, _, _, err := n.Apply(nil, &change.Event{Op: change.OpCreate, After: change.Row{}}); err == nil || err.Error() != "events from shop.public.orders: derive function is nil" {
		t.Fatalf("Apply = %v", err)
	}
}
