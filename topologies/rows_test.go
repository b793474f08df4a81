package topologies_test

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

type status string

// everyType has a field of every type a column reads into.
type everyType struct {
	ID       int64
	Small    int16
	Count    int32 `cdc:"n"`
	Big      int
	Real     float32
	Double   float64
	Amount   *big.Rat
	OK       bool
	Name     string
	Status   status
	Data     []byte
	Doc      json.RawMessage
	At       time.Time
	Since    time.Duration
	Wait     change.MicroDuration
	Tags     []any
	Note     *string
	Missing  *int64
	NoAmount *big.Rat
	Anything any
	Skipped  string `cdc:"-"`
	private  int
}

// TestTableRowRoundTrip: the Row of a value reads back, through a node, as
// the value, with the column names and Go types capture sends.
func TestTableRowRoundTrip(t *testing.T) {
	table := topologies.TableOf[everyType]("shop", "public", "t")
	note := "hello"
	in := everyType{ID: 1 << 40, Small: -3, Count: 7, Big: 9, Real: 1.5, Double: 2.25, Amount: big.NewRat(1999, 100), OK: true,
		Name: "n", Status: "paid", Data: []byte{1, 2}, Doc: json.RawMessage(`{"a":1}`),
		At: time.Date(2026, 11, 21, 9, 0, 0, 0, time.FixedZone("x", 3600)), Since: 90 * time.Minute, Wait: 1_500_000,
		Tags: []any{"a", nil, int64(3)}, Note: &note, Anything: int8(4), Skipped: "x", private: 1}
	row, err := table.Row(in)
	if err != nil {
		t.Fatal(err)
	}
	want := change.Row{"id": int64(1 << 40), "small": int32(-3), "n": int32(7), "big": int64(9), "real": float32(1.5), "double": 2.25,
		"amount": big.NewRat(1999, 100), "ok": true, "name": "n", "status": "paid", "data": []byte{1, 2}, "doc": []byte(`{"a":1}`),
		"at": time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), "since": 90 * time.Minute, "wait": change.MicroDuration(1_500_000),
		"tags": []any{"a", nil, int64(3)}, "note": "hello", "missing": nil, "no_amount": nil, "anything": int32(4)}
	if !reflect.DeepEqual(row, want) {
		t.Fatalf("Row =\n%#v\nwant\n%#v", row, want)
	}
	if row["amount"].(*big.Rat) == in.Amount {
		t.Fatal("the row shares the value's *big.Rat")
	}

	var got everyType
	node := topologies.Metrics(table, func(r everyType) []topologies.Sample { got = r; return nil })
	if _, err := metrics(node).Measure(row); err != nil {
		t.Fatal(err)
	}
	in.At, in.Anything, in.Skipped, in.private = in.At.UTC(), int32(4), "", 0
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, in)
	}
}

func TestTableRowRejectsTypesNoColumnReadsInto(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  func() (change.Row, error)
		want string
	}{
		{"uint", func() (change.Row, error) {
			type r struct{ ID uint64 }
			return topologies.TableOf[r]("p", "s", "t").Row(r{ID: 1})
		}, "field ID of topologies_test.r: uint64: PostgreSQL has no unsigned integers"},
		{"map", func() (change.Row, error) {
			type r struct{ Attrs map[string]string }
			return topologies.TableOf[r]("p", "s", "t").Row(r{})
		}, "field Attrs of topologies_test.r: map[string]string: no column type reads into it"},
		{"string slice", func() (change.Row, error) {
			type r struct{ Tags []string }
			return topologies.TableOf[r]("p", "s", "t").Row(r{})
		}, "arrays as []any"},
		{"not a struct", func() (change.Row, error) { return topologies.TableOf[int]("p", "s", "t").Row(1) }, "row type int is not a struct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row, err := tc.row()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Row = %v, %v; want an error containing %q", row, err, tc.want)
			}
		})
	}
}
