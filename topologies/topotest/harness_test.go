package topotest_test

import (
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

type order struct {
	ID       int64
	Customer int64 `cdc:"customer_id"`
	Status   string
	Amount   *big.Rat
	Note     *string
}

var orders = topologies.TableOf[order]("shop", "public", "orders")

func cents(a *big.Rat) int64 {
	c, _ := new(big.Rat).Mul(a, big.NewRat(100, 1)).Float64()
	return int64(c)
}

func measure(o order) []topologies.Sample {
	return []topologies.Sample{
		{Series: "per_status", Bucket: o.Status, Value: 1},
		{Series: "revenue", Bucket: "all", Value: cents(o.Amount)},
		{Series: "top_customers", Bucket: strconv.FormatInt(o.Customer, 10), Value: cents(o.Amount), Ranked: true},
		{Series: "per_status:recent", Bucket: o.Status, Value: 1, TTL: 90 * time.Minute},
	}
}

func metricsTopology() *topologies.Topology {
	return topologies.New("metrics", topologies.Metrics(orders, measure))
}

func newOrder(id, customer int64, status string, amount int64) order {
	return order{ID: id, Customer: customer, Status: status, Amount: big.NewRat(amount, 1)}
}

// fatalT is a T whose Fatalf stops the function under test, for the
// failures the harness reports; failure runs f and returns the message.
type fatalT struct{}

type fatal string

func (fatalT) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func failure(f func(t topotest.T)) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = string(r.(fatal))
		}
	}()
	f(fatalT{})
	return ""
}

func TestMetricsMoveByTheRowsDifference(t *testing.T) {
	h := topotest.New(t, metricsTopology())
	rows := topotest.Table(h, orders)
	a, b := newOrder(1, 7, "new", 10), newOrder(2, 8, "new", 25)
	rows.Insert(a)
	rows.Insert(b)
	a.Status, a.Amount = "paid", big.NewRat(12, 1)
	rows.Update(a)

	for _, tc := range []struct {
		series string
		want   map[string]int64
	}{
		{"per_status", map[string]int64{"new": 1, "paid": 1}},
		{"revenue", map[string]int64{"all": 3700}},
		{"top_customers", map[string]int64{"7": 1200, "8": 2500}},
		{"absent", map[string]int64{}},
	} {
		if got := h.Series(tc.series); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Series(%s) = %v, want %v", tc.series, got, tc.want)
		}
	}
	if got, want := h.Ranking("top_customers"), []topotest.Rank{{"8", 2500}, {"7", 1200}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Ranking = %v, want %v", got, want)
	}
	if got := h.TTL("per_status:recent"); got != 90*time.Minute {
		t.Errorf("TTL = %v, want 1h30m", got)
	}
	if got := h.TTL("per_status"); got != 0 {
		t.Errorf("TTL of a series without one = %v", got)
	}

	// Deleting both rows empties every bucket, and empty buckets and series
	// are removed.
	rows.Delete(order{ID: 1})
	rows.Delete(b)
	if got := h.Metrics(); len(got) != 0 {
		t.Fatalf("after deleting every row: %v", got)
	}
	if got := h.Ranking("top_customers"); got != nil {
		t.Fatalf("Ranking of a removed series = %v", got)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 5}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestRankingTiesReadInReverseBucketOrder(t *testing.T) {
	h := topotest.New(t, metricsTopology())
	rows := topotest.Table(h, orders)
	for i, c := range []int64{3, 1, 2} {
		rows.Insert(newOrder(int64(i+1), c, "new", 5))
	}
	rows.Insert(newOrder(4, 9, "new", 1))
	want := []topotest.Rank{{"3", 500}, {"2", 500}, {"1", 500}, {"9", 100}}
	if got := h.Ranking("top_customers"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Ranking = %v, want %v", got, want)
	}
	if msg := failure(func(t topotest.T) { topotest.New(t, metricsTopology()).Ranking("x") }); msg != "" {
		t.Fatalf("Ranking of a missing series failed: %s", msg)
	}
}

// TestMetricsApplyEachChangeOnce: a redelivered change, a replay of every
// change and a change older than the row's last one change nothing.
func TestMetricsApplyEachChangeOnce(t *testing.T) {
	h := topotest.New(t, metricsTopology())
	rows := topotest.Table(h, orders)
	o := newOrder(1, 7, "new", 10)
	created := rows.Insert(o)
	o.Status = "paid"
	paid := rows.Update(o)
	want := h.Metrics()

	h.Redeliver(paid)
	h.Redeliver(created)
	h.Replay()
	rows.Update(newOrder(1, 7, "cancelled", 10), topotest.At(created.Event.Position))
	if got := h.Metrics(); !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics moved:\n%v\nwant\n%v", got, want)
	}
	if got, want := h.Stats(), (topotest.Stats{Changes: 7, Duplicates: 5}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	if got := h.Series("per_status"); !reflect.DeepEqual(got, map[string]int64{"paid": 1}) {
		t.Fatalf("per_status = %v", got)
	}
}

func TestMetricsSeriesCannotChangeKind(t *testing.T) {
	mixed := topologies.New("mixed", topologies.Metrics(orders, func(o order) []topologies.Sample {
		return []topologies.Sample{{Series: "s", Bucket: "a", Value: 1}, {Series: "s", Bucket: "b", Value: 1, Ranked: true}}
	}))
	msg := failure(func(t topotest.T) {
		topotest.Table(topotest.New(t, mixed), orders).Insert(newOrder(1, 1, "new", 1))
	})
	if !strings.Contains(msg, "series s is ranked in one sample and not in another") {
		t.Fatalf("failure = %q", msg)
	}
	msg = failure(func(t topotest.T) {
		h := topotest.New(t, metricsTopology())
		topotest.Table(h, orders).Insert(newOrder(1, 1, "new", 1))
		h.Ranking("per_status")
	})
	if !strings.Contains(msg, "series per_status is not ranked") {
		t.Fatalf("failure = %q", msg)
	}
}

func TestPositions(t *testing.T) {
	h := topotest.New(t, metricsTopology())
	rows := topotest.Table(h, orders)
	pos := func(rec topotest.Record) change.Position { return rec.Event.Position }
	p := func(lsn change.LSN, i uint32) change.Position { return change.Position{CommitLSN: lsn, Index: i} }
	for _, tc := range []struct {
		name string
		rec  topotest.Record
		want change.Position
	}{
		{"a snapshot read", rows.Read(newOrder(1, 1, "new", 1)), p(1, 0)},
		{"the same snapshot", rows.Read(newOrder(2, 1, "new", 1)), p(1, 0)},
		{"the next commit", rows.Insert(newOrder(3, 1, "new", 1)), p(2, 1)},
		{"explicit", rows.Insert(newOrder(4, 1, "new", 1), topotest.At(p(9, 3))), p(9, 3)},
		{"explicit, earlier", rows.Insert(newOrder(5, 1, "new", 1), topotest.At(p(5, 1))), p(5, 1)},
		{"after the latest", rows.Update(newOrder(5, 1, "paid", 1)), p(10, 1)},
		{"a new snapshot", rows.Read(newOrder(6, 1, "new", 1)), p(11, 0)},
	} {
		if got := pos(tc.rec); got != tc.want {
			t.Errorf("%s: position %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestRecordsAsCaptureWritesThem(t *testing.T) {
	note := "gift"
	o := order{ID: 3, Customer: 7, Status: "new", Amount: big.NewRat(1999, 100), Note: &note}
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	full := map[string]any{"id": int64(3), "customer_id": int64(7), "status": "new", "amount": big.NewRat(1999, 100), "note": "gift"}
	paid := map[string]any{"id": int64(3), "customer_id": int64(7), "status": "paid", "amount": big.NewRat(1999, 100), "note": "gift"}
	key := change.Row{"id": int64(3)}
	// A delete's before image under REPLICA IDENTITY DEFAULT: the key, and
	// Debezium's fallback values in the other columns.
	keyOnly := change.Row{"id": int64(3), "customer_id": int64(0), "status": "", "amount": new(big.Rat), "note": nil}
	keysOnly := change.Row{"id": int64(3), "customer_id": int64(7), "status": "", "amount": new(big.Rat), "note": nil}
	for _, tc := range []struct {
		name         string
		opts         []topotest.TableOption
		before       change.Row // the update's
		deleteBefore change.Row
		wantKey      change.Row
	}{
		{"replica identity default", nil, nil, keyOnly, key},
		{"replica identity full", []topotest.TableOption{topotest.ReplicaIdentityFull()}, full, paid, key},
		{"a composite key", []topotest.TableOption{topotest.Key("customer_id", "id")}, nil,
			keysOnly, change.Row{"id": int64(3), "customer_id": int64(7)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := topotest.Table(topotest.New(t, metricsTopology()), orders, tc.opts...)
			ins := rows.Insert(o, topotest.CommittedAt(at))
			if ins.Topic != "shop.public.orders" || !reflect.DeepEqual(ins.Key, tc.wantKey) || ins.Event.Op != change.OpCreate ||
				ins.Event.Before != nil || !reflect.DeepEqual(map[string]any(ins.Event.After), full) {
				t.Fatalf("insert record %+v %+v", ins, ins.Event)
			}
			src := ins.Event.Source
			if tx := ins.Event.Transaction; tx == nil || tx.TotalOrder != 1 || tx.ID != "1:1" || src.TxID != 1 || src.Sequence != `["1","1"]` {
				t.Fatalf("insert transaction %+v, source %+v", tx, src)
			}
			if read := rows.Read(o); read.Event.Transaction != nil || read.Event.Source.Snapshot != "true" {
				t.Fatalf("a snapshot read's transaction %+v, source %+v", read.Event.Transaction, read.Event.Source)
			}
			if ins.Event.TableName() != "public.orders" || src.Name != "shop" || src.TsMs != at.UnixMilli() || src.Snapshot != "false" {
				t.Fatalf("insert source %+v", src)
			}
			p := o
			p.Status = "paid"
			upd := rows.Update(p)
			if !reflect.DeepEqual(upd.Event.Before, tc.before) || !reflect.DeepEqual(map[string]any(upd.Event.After), paid) {
				t.Fatalf("update before %v after %v, want before %v", upd.Event.Before, upd.Event.After, tc.before)
			}
			del := rows.Delete(order{ID: 3, Customer: 7})
			if !sameRow(del.Event.Before, tc.deleteBefore) || del.Event.After != nil || del.Event.Op != change.OpDelete {
				t.Fatalf("delete before %v after %v, want before %v", del.Event.Before, del.Event.After, tc.deleteBefore)
			}
		})
	}
}

// sameRow compares rows, numerics by value.
func sameRow(a, b change.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if rx, isRat := x.(*big.Rat); isRat {
			if ry, _ := y.(*big.Rat); ry == nil || rx.Cmp(ry) != 0 {
				return false
			}
		} else if !ok || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func TestMisuseFailsTheTest(t *testing.T) {
	type unsigned struct {
		ID    int64
		Count uint32
	}
	for _, tc := range []struct {
		name string
		f    func(t topotest.T)
		want string
	}{
		{"an invalid topology", func(t topotest.T) { topotest.New(t, topologies.New("Bad Name", topologies.Metrics(orders, measure))) },
			`topotest: topology name "Bad Name"`},
		{"a table the topology does not read", func(t topotest.T) {
			topotest.Table(topotest.New(t, metricsTopology()), topologies.TableOf[order]("shop", "public", "order"))
		}, "topology metrics reads no topic shop.public.order (it reads shop.public.orders)"},
		{"no id column", func(t topotest.T) {
			type keyless struct{ Code string }
			table := topologies.TableOf[keyless]("shop", "public", "codes")
			topotest.Table(topotest.New(t, topologies.New("codes", topologies.Metrics(table, func(keyless) []topologies.Sample { return nil }))), table)
		}, "topotest_test.keyless has no column id to key rows by; name the primary-key columns with topotest.Key (columns: code)"},
		{"a row no column reads into", func(t topotest.T) {
			table := topologies.TableOf[unsigned]("shop", "public", "counts")
			h := topotest.New(t, topologies.New("counts", topologies.Metrics(table, func(unsigned) []topologies.Sample { return nil })))
			topotest.Table(h, table).Insert(unsigned{ID: 1})
		}, "topotest: table shop.public.counts: field Count of topotest_test.unsigned: uint32: PostgreSQL has no unsigned integers"},
		{"a value no column reads into", func(t topotest.T) {
			type dynamic struct {
				ID    int64
				Attrs any
			}
			table := topologies.TableOf[dynamic]("shop", "public", "attrs")
			h := topotest.New(t, topologies.New("attrs", topologies.Metrics(table, func(dynamic) []topologies.Sample { return nil })))
			topotest.Table(h, table).Insert(dynamic{ID: 1, Attrs: map[string]int{}})
		}, "change (op c) to shop.public.attrs: field Attrs of topotest_test.dynamic: map[string]int: no column type reads into it"},
		{"a nil node", func(t topotest.T) {
			topotest.New(t, topologies.New("other", topologies.Metrics(orders, measure), nil))
		}, "topotest: topology other: node 1 is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := failure(tc.f); !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q, want it to contain %q", msg, tc.want)
			}
		})
	}
}

// TestUnavailableColumnIsDeadLettered: a change whose row carries a value
// the source did not send (an unchanged TOASTed column) cannot be measured;
// the harness sets it aside as the processor does, and goes on.
func TestUnavailableColumnIsDeadLettered(t *testing.T) {
	h := topotest.New(t, metricsTopology())
	rec := topotest.Table(h, orders).Insert(newOrder(1, 1, "new", 1))
	rec.Event.After["note"] = change.Unavailable{}
	rec.Event.Position.Index++
	h.Redeliver(rec)
	dead := h.DeadLetters()
	if len(dead) != 1 || !strings.Contains(dead[0].Err.Error(), "column note: the source did not send its value") {
		t.Fatalf("dead letters %+v", dead)
	}
}
