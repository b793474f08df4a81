package serde

import (
	"context"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

type orderPaid struct {
	OrderID int64
	Amount  *big.Rat
	Note    *string
	PaidAt  time.Time
}

// TestDomainEventRoundTrip: an event encodes through the registry and
// decodes into its common fields and its data by name.
func TestDomainEventRoundTrip(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	paid := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	ev := &DomainEvent{ID: "e1", Type: "OrderPaid", AggregateID: "7", Position: change.Position{CommitLSN: 0x10, Index: 2},
		OccurredAt: paid, Data: orderPaid{OrderID: 7, Amount: big.NewRat(2050, 100), PaidAt: paid}}
	if err := CheckEvent("events.Order", ev); err != nil {
		t.Fatalf("CheckEvent: %v", err)
	}
	value, err := NewEncoder(client, "shop").EventEncoder("events.Order").Encode(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	got, data, err := NewDecoder(client).DecodeEventRecord(ctx, value)
	if err != nil {
		t.Fatal(err)
	}
	want := *ev
	want.Data = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	wantData := map[string]any{"order_id": int64(7), "amount": "20.5", "note": nil, "paid_at": paid}
	if !reflect.DeepEqual(data, wantData) {
		t.Fatalf("data %#v, want %#v", data, wantData)
	}
	// ReadBack, without the registry, reads the same.
	back, backData, err := ReadBack("events.Order", ev)
	if err != nil || !reflect.DeepEqual(back, got) || !reflect.DeepEqual(backData, data) {
		t.Fatalf("ReadBack = %+v %#v, %v; the decoder read %+v %#v", back, backData, err, got, data)
	}
}

// TestCheckEventNamesWhatCannotTravel: without a registry, CheckEvent
// refuses the data an EventEncoder cannot encode.
func TestCheckEventNamesWhatCannotTravel(t *testing.T) {
	for _, tc := range []struct {
		name string
		data any
		want string
	}{
		{"not a struct", map[string]any{"id": 1}, "data is map[string]interface {}, want a struct"},
		{"nil", nil, "data is <nil>, want a struct"},
		{"nested struct", struct{ Customer struct{ ID int64 } }{}, "field Customer: type struct { ID int64 } has no Avro form here"},
		{"slice", struct{ Tags []string }{}, "field Tags: type []string has no Avro form here"},
		{"unsigned", struct{ N uint32 }{}, "field N: type uint32 has no Avro form here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEvent("events.Order", &DomainEvent{Type: "OrderPaid", Data: tc.data})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckEvent = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
