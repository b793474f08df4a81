package topologies_test

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

type order struct {
	ID        int64
	Customer  int32 `cdc:"customer_id"`
	Amount    *big.Rat
	Note      *string
	CreatedAt time.Time
	Ignored   string `cdc:"-"`
}

func perDay(o order) []topologies.Sample {
	day := o.CreatedAt.Format(time.DateOnly)
	cents, _ := new(big.Rat).Mul(o.Amount, big.NewRat(100, 1)).Float64()
	return []topologies.Sample{{Series: "orders", Bucket: day, Value: 1}, {Series: "cents", Bucket: day, Value: int64(cents)}}
}

func TestMetricsMeasureTypedRows(t *testing.T) {
	node := topologies.Metrics(topologies.TableOf[order]("shop", "public", "orders"), perDay)
	if node.Input() != "shop.public.orders" {
		t.Fatalf("input = %s", node.Input())
	}
	for _, tc := range []struct {
		name string
		row  change.Row
		want []topologies.Sample
	}{
		{"a row", change.Row{"id": int64(1), "customer_id": int32(4), "amount": big.NewRat(1999, 100),
			"note": nil, "created_at": time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), "ignored": "x"},
			[]topologies.Sample{{"orders", "2026-11-21", 1}, {"cents", "2026-11-21", 1999}}},
		{"a deleted row", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := node.Measure(tc.row)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Measure = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMeasureRejectsMistypedColumns(t *testing.T) {
	node := topologies.Metrics(topologies.TableOf[order]("shop", "public", "orders"), perDay)
	_, err := node.Measure(change.Row{"id": "not a number"})
	if err == nil || !strings.Contains(err.Error(), "column id into field ID") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	table := topologies.TableOf[order]("shop", "public", "orders")
	topo := topologies.New("Bad Name",
		topologies.Metrics(table, perDay),
		topologies.Metrics(table, perDay),
		topologies.Metrics(topologies.TableOf[int]("shop", "public", "x"), func(int) []topologies.Sample { return nil }),
		topologies.Metrics[order](topologies.TableOf[order]("shop", "public", "y"), nil),
	)
	err := topo.Validate()
	if err == nil {
		t.Fatal("Validate passed")
	}
	for _, want := range []string{`topology name "Bad Name"`, "reads shop.public.orders twice", "row type int is not a struct", "measure function is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err := topologies.New("ok", topologies.Metrics(table, perDay)).Validate(); err != nil {
		t.Fatalf("a good topology fails: %v", err)
	}
}

func Example() {
	type Order struct {
		ID        int64
		Amount    *big.Rat
		CreatedAt time.Time
	}
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	topo := topologies.New("order-metrics",
		topologies.Metrics(orders, func(o Order) []topologies.Sample {
			return []topologies.Sample{{Series: "orders_per_day", Bucket: o.CreatedAt.Format(time.DateOnly), Value: 1}}
		}))
	if err := topo.Validate(); err != nil {
		fmt.Println(err)
	}
	fmt.Print(topo)
	// Output:
	// topology order-metrics
	//   metrics over shop.public.orders (rows as topologies_test.Order)
}
