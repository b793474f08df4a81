package topologies_test

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// metrics returns the runtime form of a Metrics node: its Measure is what
// the processor calls for each change.
func metrics(n *topologies.MetricsNode) *engine.Metrics { return n.Engine().(*engine.Metrics) }

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
	node := metrics(topologies.Metrics(topologies.TableOf[order]("shop", "public", "orders"), perDay))
	if node.Input != "shop.public.orders" || node.RowType != "topologies_test.order" {
		t.Fatalf("input %s, rows as %s", node.Input, node.RowType)
	}
	for _, tc := range []struct {
		name string
		row  change.Row
		want []topologies.Sample
	}{
		{"a row", change.Row{"id": int64(1), "customer_id": int32(4), "amount": big.NewRat(1999, 100),
			"note": nil, "created_at": time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), "ignored": "x"},
			[]topologies.Sample{{Series: "orders", Bucket: "2026-11-21", Value: 1}, {Series: "cents", Bucket: "2026-11-21", Value: 1999}}},
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

// TestMeasureReadsEveryDecimalMode: a *big.Rat field takes a numeric however
// decimal.handling.mode made it travel, and a time.Duration field takes an
// interval (microseconds on the wire).
func TestMeasureReadsEveryDecimalMode(t *testing.T) {
	type row struct {
		ID     int64
		Amount *big.Rat
		Wait   time.Duration
		WaitUs int64 `cdc:"wait"`
	}
	var got row
	node := metrics(topologies.Metrics(topologies.TableOf[row]("shop", "public", "t"), func(r row) []topologies.Sample {
		got = r
		return nil
	}))
	for _, amount := range []any{big.NewRat(1999, 100), "19.99", 19.99} {
		if _, err := node.Measure(change.Row{"id": int64(1), "amount": amount, "wait": change.MicroDuration(1_500_000)}); err != nil {
			t.Fatalf("amount %#v: %v", amount, err)
		}
		if got.Amount.Cmp(big.NewRat(1999, 100)) != 0 || got.Wait != 1500*time.Millisecond || got.WaitUs != 1_500_000 {
			t.Fatalf("amount %#v: got %+v", amount, got)
		}
	}
	if _, err := node.Measure(change.Row{"id": int64(1), "amount": "NaN"}); err == nil {
		t.Fatal("NaN became a *big.Rat")
	}
	if _, err := node.Measure(change.Row{"id": int64(1), "wait": change.MicroDuration(1 << 62)}); err == nil || !strings.Contains(err.Error(), "overflows time.Duration") {
		t.Fatalf("a 146,000-year interval into a time.Duration: %v", err)
	}
}

func TestMeasureRejectsMistypedColumns(t *testing.T) {
	node := metrics(topologies.Metrics(topologies.TableOf[order]("shop", "public", "orders"), perDay))
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
	for _, want := range []string{`topology name "Bad Name"`, "has two Metrics nodes of shop.public.orders", "row type int is not a struct", "measure function is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err := topologies.New("ok", topologies.Metrics(table, perDay)).Validate(); err != nil {
		t.Fatalf("a good topology fails: %v", err)
	}
	if err := topologies.New("ok", topologies.Metrics(table, perDay), nil).Validate(); err == nil || !strings.Contains(err.Error(), "topology ok: node 1 is nil") {
		t.Fatalf("a nil node: %v", err)
	}
	if err := topologies.New("ok", &topologies.MetricsNode{}).Validate(); err == nil || !strings.Contains(err.Error(), "not built with this package's constructors") {
		t.Fatalf("a zero node: %v", err)
	}
}

// TestTopologyEngine: the runtime form of a topology is its nodes', in
// order.
func TestTopologyEngine(t *testing.T) {
	a := topologies.Metrics(topologies.TableOf[order]("shop", "public", "orders"), perDay)
	b := topologies.Index(topologies.TableOf[order]("shop", "public", "archive"), "orders", orderDocument)
	nodes := topologies.New("ok", a, b).Engine()
	if len(nodes) != 2 || nodes[0] != a.Engine() || nodes[1] != b.Engine() {
		t.Fatalf("Engine = %v", nodes)
	}
}

// TestDebeziumTableIsReadOneWay: a topic read as a Debezium connector's and
// as capture's in one topology is a mistake Validate names; read one way by
// two kinds of node it is fine.
func TestDebeziumTableIsReadOneWay(t *testing.T) {
	dbz := topologies.DebeziumTable[order]("mydbz.inventory.orders")
	same := topologies.TableOf[order]("mydbz", "inventory", "orders")
	if same.Topic != dbz.Topic || !dbz.Debezium || same.Debezium {
		t.Fatalf("tables %+v and %+v", dbz, same)
	}
	err := topologies.New("mixed", topologies.Metrics(dbz, perDay), topologies.Metrics(same, perDay)).Validate()
	if err == nil || !strings.Contains(err.Error(), "topic mydbz.inventory.orders is read both as a topic cdcflow's capture writes (topologies.TableOf) and as one another Debezium connector writes (topologies.DebeziumTable)") {
		t.Errorf("Validate() = %v", err)
	}
	index := topologies.Index(dbz, "orders", func(o order) (string, any) { return fmt.Sprint(o.ID), o })
	if err := topologies.New("twice", topologies.Metrics(dbz, perDay), index).Validate(); err != nil {
		t.Errorf("two nodes over one Debezium table: %v", err)
	}
}
