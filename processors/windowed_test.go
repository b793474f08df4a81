package processors

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
	"github.com/redis/go-redis/v9"
)

func conformWindowMeasure(o conformOrder) []topologies.WindowSample {
	cents, _ := new(big.Rat).Mul(o.Amount, big.NewRat(100, 1)).Float64()
	return []topologies.WindowSample{
		{Series: "orders", Value: 1},
		{Series: "revenue_by_status", Group: o.Status, Value: int64(cents)},
	}
}

// conformWindowScript feeds changes across windows: rows created in
// different windows, updated later (their contribution stays in their
// creation's windows), deleted, inserted again, created late, updated
// after their first windows closed, redelivered; then conformScript.
func conformWindowScript(h *topotest.Harness, deliver func(rec topotest.Record)) {
	rows := topotest.Table(h, conformOrders)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	order := func(id int64, status string, cents int64) conformOrder {
		return conformOrder{ID: id, CustomerID: 7, Status: status, Amount: big.NewRat(cents, 100), CreatedAt: at}
	}
	var sent []topotest.Record
	feed := func(rec topotest.Record) {
		sent = append(sent, rec)
		deliver(rec)
	}
	s := func(d int) topotest.ChangeOption { return topotest.CommittedAt(at.Add(time.Duration(d) * time.Second)) }
	// 20s windows hopping by 10s, 10s grace: a window starting at :00
	// ends at :20 and closes at :30.
	feed(rows.Insert(order(11, "new", 100), s(5)))      // windows 9:59:50, 10:00:00
	feed(rows.Insert(order(12, "new", 200), s(15)))     // 10:00:00, 10:00:10
	feed(rows.Update(order(11, "paid", 150), s(25)))    // 9:59:50 closed: late there
	feed(rows.Insert(order(13, "new", 300), s(31)))     // 10:00:20, 10:00:30
	feed(rows.Delete(conformOrder{ID: 12}, s(32)))      // leaves 10:00:10, not the closed 10:00:00
	feed(rows.Insert(order(12, "new", 250), s(40)))     // anchored anew: 10:00:30, 10:00:40
	feed(rows.Update(order(13, "shipped", 300), s(55))) // 10:00:20 closed: late there
	feed(rows.Insert(order(15, "new", 50), s(70)))      // 10:01:00, 10:01:10
	feed(rows.Insert(order(14, "new", 400), s(55)))     // after the clock passed :70: late for 10:00:40
	h.Redeliver(sent...)
	for _, rec := range sent {
		deliver(rec)
	}
	conformScript(h, deliver)
}

// TestHarnessWindowsAgreeWithRedis runs a Windowed node (20s windows
// hopping by 10s, 10s grace) on goka's tester against the real Redis: every
// windowed series ends as the harness's, window for window, and late and
// duplicate changes are counted alike; delivering every record once more
// leaves Redis byte-for-byte as it was.
func TestHarnessWindowsAgreeWithRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer rdb.Close()
	reg := fakeRegistry(t)
	enc, dec := serde.NewEncoder(reg, "shop"), serde.NewDecoder(reg)
	prefix := fmt.Sprintf("topotest-%d", time.Now().UnixNano())
	ctx := context.Background()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	windows := topologies.Hopping(20*time.Second, 10*time.Second).Grace(10 * time.Second)
	topo := topologies.New("conform-windows", topologies.Windowed(conformOrders, windows, conformWindowMeasure))
	p, tt := onTester(t, topo, Config{Decoder: dec, Redis: rdb, KeyPrefix: prefix})
	h := topotest.New(t, topo)
	input := gokaInput(t, p, tt, enc)
	var delivered []topotest.Record
	conformWindowScript(h, func(rec topotest.Record) {
		delivered = append(delivered, rec)
		input(rec)
	})

	for _, series := range []string{"orders", "revenue_by_status"} {
		got, err := p.Metrics().Windows(ctx, topo.Name, series, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want := h.Windows(series)
		if len(want) < 5 || len(got) != len(want) {
			t.Fatalf("series %s: Redis %+v, harness %+v", series, got, want)
		}
		for i := range want {
			if w, g := want[i], got[i]; !w.Start.Equal(g.Start) || !w.End.Equal(g.End) || w.Group != g.Group || w.Value != g.Value {
				t.Errorf("series %s window %d: Redis %+v, harness %+v", series, i, g, w)
			}
		}
	}
	// Read back as a time series, from 10:00:00 to 10:01:00.
	w, err := p.Metrics().Windows(ctx, topo.Name, "orders", time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 10, 1, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var counts []string
	for _, x := range w {
		counts = append(counts, fmt.Sprintf("%s=%d", x.Start.Format("15:04:05"), x.Value))
	}
	if want := []string{"10:00:00=2", "10:00:20=1", "10:00:30=2", "10:00:40=1", "10:00:50=1"}; !reflect.DeepEqual(counts, want) {
		t.Errorf("orders from 10:00:00 to 10:01:00: %v, want %v", counts, want)
	}
	got, want := p.Stats(), h.Stats()
	if got.Changes != want.Changes || got.Duplicates != want.Duplicates || got.Late != want.Late || want.Late < 2 {
		t.Errorf("processor stats %+v, harness %+v", got, want)
	}

	t.Logf("processor %+v, harness %+v; orders windows %v", got, want, counts)
	before := redisHashes(ctx, t, rdb, prefix)
	for _, rec := range delivered {
		input(rec)
	}
	if after := redisHashes(ctx, t, rdb, prefix); !maps.Equal(before, after) {
		t.Errorf("delivering every record again changed Redis:\nbefore %v\nafter  %v", before, after)
	}
	if st := p.Stats(); st.Duplicates-got.Duplicates != int64(len(delivered))-countTombstones(delivered) {
		t.Errorf("stats after the replay %+v: want every change a duplicate", st)
	}
}

func countTombstones(recs []topotest.Record) (n int64) {
	for _, r := range recs {
		if r.Event == nil {
			n++
		}
	}
	return n
}

// redisHashes reads every hash under prefix as its fields and values, in
// order.
func redisHashes(ctx context.Context, t *testing.T, rdb *redis.Client, prefix string) map[string]string {
	t.Helper()
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		h, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for _, f := range slices.Sorted(maps.Keys(h)) {
			out[k] += f + "=" + h[f] + "\n"
		}
	}
	if len(out) < 3 {
		t.Fatalf("Redis holds %v under %s: want the windowed series and state", out, prefix)
	}
	return out
}
