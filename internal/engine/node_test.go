package engine

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

// TestNames: the names of what the processors keep in Kafka. Changing one
// orphans the state a running deployment keeps under the old name.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"ReadModelGroup", ReadModelGroup("shop", "summary"), "shop-summary"},
		{"JoinGroup", JoinGroup("shop", "summary"), "shop-summary-join"},
		{"UpdatesTopic", UpdatesTopic("shop", "summary"), "shop-summary-updates"},
		{"ProjectionGroup", ProjectionGroup("shop", "revenue"), "shop-revenue"},
		{"TableTopic", TableTopic("shop-summary"), "shop-summary-table"},
		{"LoopTopic", LoopTopic("shop-summary-join"), "shop-summary-join-loop"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestReferenceKey: the join stage keeps a referenced row under
// ReferenceKey, which the views read it by.
func TestReferenceKey(t *testing.T) {
	const customers = "shop.public.customers"
	n := &ReadModel{Name: "summary", Refs: []RefPart{{
		Topic:  customers,
		Decode: func(r change.Row) (any, error) { return r["id"], nil },
		Key:    func(row any) string { return strconv.FormatInt(row.(int64), 10) },
	}}}
	for _, ev := range []*change.Event{
		{Op: change.OpCreate, Position: change.Position{CommitLSN: 1}, After: change.Row{"id": int64(7)}},
		{Op: change.OpDelete, Position: change.Position{CommitLSN: 2}, Before: change.Row{"id": int64(7)}},
	} {
		routed, err := n.RouteRef(customers, ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := ReferenceKey(customers, "7"); routed.Key != want {
			t.Fatalf("the %s of customer 7 goes to %q, ReferenceKey is %q", ev.Op, routed.Key, want)
		}
	}
}

func TestSinksOf(t *testing.T) {
	model := &ReadModel{Name: "summary"}
	nodes := []Node{
		&Events{Input: "shop.public.payments"},
		&Metrics{Input: "shop.public.orders"},
		&SearchIndex{Input: "shop.public.products", Index: "products", Mapping: `{"properties":{}}`},
		model,
		&ReadModelIndex{Model: model, Index: "summaries"},
		&Projection{Name: "revenue"},
	}
	got := SinksOf(nodes)
	want := Sinks{Redis: true, Indexes: []IndexSpec{{"products", `{"properties":{}}`}, {"summaries", ""}}}
	if !reflect.DeepEqual(got, want) || !got.Elasticsearch() {
		t.Fatalf("SinksOf = %+v, want %+v", got, want)
	}
	if got := SinksOf(nodes[:1]); got.Redis || got.Elasticsearch() {
		t.Fatalf("SinksOf(an Events node) = %+v, want none", got)
	}
}
