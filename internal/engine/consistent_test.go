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

// TestGateOrderReleasesInCommitOrder: END records are numbered in the order
// they come, one read again not anew; complete transactions are released
// in that order, each once every one before it was, many at once when the
// one they waited for completes.
func TestGateOrderReleasesInCommitOrder(t *testing.T) {
	var q GateSeq
	for i, lsn := range []change.LSN{10, 20, 20, 15, 30} {
		n, ok := q.Number(&GateEnd{LSN: lsn})
		want, wantOK := map[int]int64{0: 0, 1: 1, 4: 2}[i]
		if ok != wantOK || n != want {
			t.Fatalf("END %d (LSN %d): number %d, %v; want %d, %v", i, lsn, n, ok, want, wantOK)
		}
	}
	var o GateOrder
	steps := []struct {
		seq  int64
		want []int64
	}{
		{1, nil}, // complete before the transaction committed before it
		{3, nil},
		{0, []int64{0, 1}},
		{0, nil}, // released before
		{130, nil},
		{2, []int64{2, 3}},
	}
	for i, s := range steps {
		if got := o.Complete(s.seq); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (#%d): released %v, want %v", i, s.seq, got, s.want)
		}
	}
	if o.Next != 4 {
		t.Fatalf("next %d, want 4", o.Next)
	}
	// The rest complete in reverse: all go at once when 4 does, 130 last.
	for seq := int64(129); seq > 4; seq-- {
		if got := o.Complete(seq); got != nil {
			t.Fatalf("#%d released %v before #4", seq, got)
		}
	}
	got := o.Complete(4)
	if len(got) != 127 || got[0] != 4 || got[126] != 130 || o.Next != 131 || len(o.Done) != 0 {
		t.Fatalf("released %d (%v…), next %d, done %v", len(got), got[:min(3, len(got))], o.Next, o.Done)
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
