package engine

import (
	"maps"
	"slices"
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

// TestGateCompletesOnlyWithAllTheCredit follows one transaction of two
// changes through a read model with a reference (the root table read twice)
// and a child table: the credit comes back split, out of order, once twice;
// the transaction completes only when all of it is back, whether the END
// record came first or last.
func TestGateCompletesOnlyWithAllTheCredit(t *testing.T) {
	n := &ReadModel{Name: "m", Root: RootPart{Topic: "shop.public.orders"},
		Children: []ChildPart{{Topic: "shop.public.items"}}, Refs: []RefPart{{Topic: "shop.public.customers"}}}
	readers := n.Readers("shop")
	if want := map[string]int{"public.orders": 2, "public.items": 1, "public.customers": 1}; !maps.Equal(readers, want) {
		t.Fatalf("readers = %v, want %v", readers, want)
	}
	ev := func(index uint32) *change.Event {
		return &change.Event{Source: change.Source{TxID: 7}, Transaction: &change.Transaction{},
			Position: change.Position{CommitLSN: 100, Index: index}}
	}
	// One order and one item: the order read by the model and join stages,
	// the join stage splitting its share in three, the item read by the join
	// stage.
	order := EntryCredit("model", "shop.public.orders", ev(1))
	orderJoin := EntryCredit("join", "shop.public.orders", ev(1)).Split(3)
	item := EntryCredit("join", "shop.public.items", ev(2))
	if order.Tx != "tx:7" || item.Tx != "tx:7" {
		t.Fatalf("transactions %s, %s; want tx:7", order.Tx, item.Tx)
	}
	end := GateMsg{End: &GateEnd{Counts: map[string]int64{"public.orders": 1, "public.items": 1, "public.other": 5}}}
	credits := []GateMsg{{Credit: order, Key: "1", Msg: &ModelMsg{Position: change.Position{CommitLSN: 100, Index: 1}}},
		{Credit: orderJoin[2]}, {Credit: item}, {Credit: orderJoin[0]}, {Credit: orderJoin[0]}, {Credit: orderJoin[1]}}
	for _, endFirst := range []bool{true, false} {
		var st *GateState
		msgs := slices.Clone(credits)
		if endFirst {
			msgs = append([]GateMsg{end}, msgs...)
		} else {
			msgs = append(msgs, end)
		}
		for i, m := range msgs {
			next, complete, err := Gate(st, m, readers)
			if err != nil {
				t.Fatal(err)
			}
			if last := i == len(msgs)-1; complete != last {
				t.Fatalf("END first %v: message %d of %d: complete %v", endFirst, i+1, len(msgs), complete)
			}
			st = next
		}
		if st.Units != st.Expected || st.Expected != 3*CreditUnit || len(st.Msgs) != 1 || st.Documents() != 1 {
			t.Fatalf("END first %v: state %+v", endFirst, st)
		}
		if _, complete, _ := Gate(st, GateMsg{Credit: item}, readers); complete {
			t.Fatal("a complete transaction completed again")
		}
	}
}

// TestGateOrderReleasesInCommitOrder: transactions are released in the
// order their END records came, each once complete and every one before it
// released; an END record read again is not queued again.
func TestGateOrderReleasesInCommitOrder(t *testing.T) {
	var o GateOrder
	steps := []struct {
		m    GateMsg
		want []string
	}{
		{GateMsg{Complete: "tx:2"}, nil}, // complete before its END was queued
		{GateMsg{Enqueue: "tx:1", EndLSN: 10}, nil},
		{GateMsg{Enqueue: "tx:2", EndLSN: 20}, nil},
		{GateMsg{Enqueue: "tx:3", EndLSN: 30}, nil},
		{GateMsg{Complete: "tx:1"}, []string{"tx:1", "tx:2"}},
		{GateMsg{Enqueue: "tx:2", EndLSN: 20}, nil}, // read again
		{GateMsg{Complete: "tx:3"}, []string{"tx:3"}},
	}
	for i, s := range steps {
		if got := o.Next(s.m); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%+v): released %v, want %v", i, s.m, got, s.want)
		}
	}
	if len(o.Queue) != 0 || len(o.Complete) != 0 {
		t.Fatalf("order left %+v", o)
	}
}

// TestSnapshotReadIsItsOwnTransaction: a change outside any transaction
// completes once the stages reading its table returned its credit.
func TestSnapshotReadIsItsOwnTransaction(t *testing.T) {
	n := &ReadModel{Name: "m", Root: RootPart{Topic: "shop.public.orders"}}
	readers := n.Readers("shop")
	c := EntryCredit("model", "shop.public.orders", &change.Event{Position: change.Position{CommitLSN: 5}})
	st, complete, err := Gate(nil, GateMsg{Credit: c}, readers)
	if err != nil || !complete || st.Expected != CreditUnit {
		t.Fatalf("complete %v, state %+v, err %v", complete, st, err)
	}
}
