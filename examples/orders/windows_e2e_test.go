package orders_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/serde"
)

// windowedSeries are the order-metrics topology's windowed series, with
// their windows' size and hop.
var windowedSeries = []struct {
	name      string
	revenue   bool
	size, hop time.Duration
}{
	{orders.OrdersPerMinuteWindow, false, time.Minute, time.Minute},
	{orders.RevenuePerMinuteWindow, true, time.Minute, time.Minute},
	{orders.OrdersPerHourWindow, false, time.Hour, 5 * time.Minute},
	{orders.RevenuePerHourWindow, true, time.Hour, 5 * time.Minute},
}

// capturedWindows computes the windowed series of the order-metrics
// topology on their own, from what capture published and what the table
// holds: each current order's anchor is the commit time (source.ts_ms) of
// the insert that created it, as read from the change topic; it counts
// once, and its current amount in cents from SQL, in every window its
// anchor falls in. (The workloads take seconds: no window closes.) A
// series maps each window's start, RFC 3339, to its value.
func capturedWindows(ctx context.Context, t *testing.T, c *capturedOrders) map[string]map[string]int64 {
	t.Helper()
	dec := serde.NewDecoder(c.reg)
	anchors := map[string]int64{}
	for _, r := range c.records(ctx, t, c.topic) {
		if r.Value == nil {
			continue
		}
		key, err := dec.DecodeKey(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(key["id"])
		_, anchored := anchors[id]
		switch {
		case ev.Op == change.OpDelete:
			delete(anchors, id)
		case ev.Op == change.OpCreate || !anchored:
			anchors[id] = ev.Source.TsMs
		}
	}
	rows, err := c.db.Query(ctx, "SELECT id::text, (amount * 100)::bigint FROM "+c.table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var id string
		var cents int64
		if err := rows.Scan(&id, &cents); err != nil {
			t.Fatal(err)
		}
		anchor, ok := anchors[id]
		if !ok {
			t.Fatalf("order %s is in the table but capture published no insert or update of it", id)
		}
		at := time.UnixMilli(anchor).UTC()
		for _, s := range windowedSeries {
			v := int64(1)
			if s.revenue {
				v = cents
			}
			for start := at.Truncate(s.hop); start.Add(s.size).After(at); start = start.Add(-s.hop) {
				if out[s.name] == nil {
					out[s.name] = map[string]int64{}
				}
				if out[s.name][start.Format(time.RFC3339)] += v; out[s.name][start.Format(time.RFC3339)] == 0 {
					delete(out[s.name], start.Format(time.RFC3339))
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// redisWindows reads the windowed series of the order-metrics topology as
// time series, in the shape capturedWindows computes.
func redisWindows(ctx context.Context, t *testing.T, m *redismetrics.Store) map[string]map[string]int64 {
	t.Helper()
	out := map[string]map[string]int64{}
	for _, s := range windowedSeries {
		windows, err := m.Windows(ctx, orders.MetricsTopology, s.name, time.Time{}, time.Time{})
		if err != nil {
			continue // not written yet
		}
		for _, w := range windows {
			if w.End.Sub(w.Start) != s.size {
				t.Fatalf("series %s: window %+v, want windows of %s", s.name, w, s.size)
			}
			if out[s.name] == nil {
				out[s.name] = map[string]int64{}
			}
			out[s.name][w.Start.Format(time.RFC3339)] = w.Value
		}
	}
	return out
}
