package capture

import (
	"errors"
	"testing"
)

func TestAcksConfirmOnlyFullyAcknowledgedPrefix(t *testing.T) {
	a := newAcks(10)
	t1, t2 := a.begin(), a.begin()
	a.produced(t1)
	a.produced(t1)
	a.produced(t2)
	a.commit(t1, 100)
	a.commit(t2, 200)
	a.acked(t2, nil) // the later transaction finishes first
	if got, _ := a.state(); got != 10 {
		t.Fatalf("confirmed %v before the first transaction was acknowledged", got)
	}
	a.acked(t1, nil)
	if got, _ := a.state(); got != 10 {
		t.Fatalf("confirmed %v with one record of the first transaction in flight", got)
	}
	a.acked(t1, nil)
	if got, _ := a.state(); got != 200 {
		t.Fatalf("confirmed %v, want 200 once both transactions are acknowledged", got)
	}
}

func TestAcksEmptyTransactionConfirmsAtCommit(t *testing.T) {
	a := newAcks(0)
	a.commit(a.begin(), 50)
	if got, _ := a.state(); got != 50 {
		t.Fatalf("confirmed %v, want 50", got)
	}
}

func TestAcksNeverConfirmPastAFailure(t *testing.T) {
	a := newAcks(0)
	t1 := a.begin()
	a.produced(t1)
	a.commit(t1, 70)
	boom := errors.New("boom")
	a.acked(t1, boom)
	got, err := a.state()
	if got != 0 || !errors.Is(err, boom) {
		t.Fatalf("state = %v, %v; want 0, boom", got, err)
	}
}
