package topotest_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// windowMeasure counts an order and its revenue, and its revenue per
// status.
func windowMeasure(o order) []topologies.WindowSample {
	return []topologies.WindowSample{
		{Series: "orders", Value: 1},
		{Series: "revenue", Value: cents(o.Amount)},
		{Series: "revenue_by_status", Group: o.Status, Value: cents(o.Amount)},
	}
}

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// win is a window of size starting at t0 plus from.
func win(from, size time.Duration, group string, value int64) topotest.Window {
	return topotest.Window{Start: t0.Add(from), End: t0.Add(from + size), Group: group, Value: value}
}

func TestTumblingWindowsCountRowsInTheWindowTheyWereCreatedIn(t *testing.T) {
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, topologies.Tumbling(time.Minute).Grace(time.Hour), windowMeasure)))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10), topotest.CommittedAt(t0.Add(5*time.Second)))
	rows.Insert(newOrder(2, 7, "new", 20), topotest.CommittedAt(t0.Add(59*time.Second)))
	rows.Insert(newOrder(3, 8, "new", 30), topotest.CommittedAt(t0.Add(60*time.Second)))
	// Order 1 is paid a minute later, for more: it stays in the 10:00
	// window, with its new amount and status.
	o1 := newOrder(1, 7, "paid", 15)
	rows.Update(o1, topotest.CommittedAt(t0.Add(2*time.Minute)))
	// Order 2 goes; order 4 is created, deleted and created again.
	rows.Delete(order{ID: 2}, topotest.CommittedAt(t0.Add(2*time.Minute)))
	rows.Insert(newOrder(4, 9, "new", 1), topotest.CommittedAt(t0.Add(2*time.Minute)))
	rows.Delete(order{ID: 4}, topotest.CommittedAt(t0.Add(3*time.Minute)))
	rows.Insert(newOrder(4, 9, "new", 2), topotest.CommittedAt(t0.Add(4*time.Minute)))

	check := func(series string, want ...topotest.Window) {
		t.Helper()
		if got := h.Windows(series); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", series, got, want)
		}
	}
	m := time.Minute
	check("orders", win(0, m, "", 1), win(m, m, "", 1), win(4*m, m, "", 1))
	check("revenue", win(0, m, "", 1500), win(m, m, "", 3000), win(4*m, m, "", 200))
	check("revenue_by_status", win(0, m, "paid", 1500), win(m, m, "new", 3000), win(4*m, m, "new", 200))

	before := h.Windows("revenue_by_status")
	h.Replay()
	if got := h.Windows("revenue_by_status"); !reflect.DeepEqual(got, before) {
		t.Errorf("the replay changed the windows: %+v, was %+v", got, before)
	}
	if st := h.Stats(); st.Changes != 16 || st.Duplicates != 8 || st.Late != 0 {
		t.Errorf("stats %+v, want 16 changes, 8 of them duplicates, none late", st)
	}
}

func TestHoppingWindowsCountARowInEveryWindowItFallsIn(t *testing.T) {
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, topologies.Hopping(time.Hour, 5*time.Minute).Grace(time.Hour), windowMeasure)))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10), topotest.CommittedAt(t0.Add(7*time.Minute)))
	got := h.Windows("orders")
	if len(got) != 12 {
		t.Fatalf("a 1h window hopping by 5m: the row is in %d windows, want 12: %+v", len(got), got)
	}
	if want := win(-50*time.Minute, time.Hour, "", 1); got[0] != want {
		t.Errorf("first window %+v, want %+v", got[0], want)
	}
	if want := win(5*time.Minute, time.Hour, "", 1); got[11] != want {
		t.Errorf("last window %+v, want %+v", got[11], want)
	}
	rows.Update(newOrder(1, 7, "new", 12), topotest.CommittedAt(t0.Add(30*time.Minute)))
	for _, w := range h.Windows("revenue") {
		if w.Value != 1200 {
			t.Errorf("window %+v after the update: want 1200", w)
		}
	}
	rows.Delete(order{ID: 1}, topotest.CommittedAt(t0.Add(31*time.Minute)))
	if got := h.WindowedSeries(); len(got) != 0 {
		t.Errorf("after the delete, series %v hold windows", got)
	}
}

// A closed window is final: the update of a row counted in it changes its
// open windows only, and a row created late counts in none of its closed
// windows.
func TestClosedWindowsAreFinal(t *testing.T) {
	windows := topologies.Hopping(10*time.Minute, 5*time.Minute).Grace(time.Minute)
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, windows, windowMeasure)))
	rows := topotest.Table(h, orders)
	m := time.Minute
	rows.Insert(newOrder(1, 7, "new", 10), topotest.CommittedAt(t0.Add(7*m))) // windows 10:00 and 10:05
	// 10:11 closes the 10:00 window (its end 10:10, plus 1m grace).
	rows.Insert(newOrder(2, 8, "new", 1), topotest.CommittedAt(t0.Add(11*m))) // windows 10:05 and 10:10
	rows.Update(newOrder(1, 7, "paid", 20), topotest.CommittedAt(t0.Add(12*m)))
	want := []topotest.Window{win(0, 10*m, "", 1000), win(5*m, 10*m, "", 2100), win(10*m, 10*m, "", 100)}
	if got := h.Windows("revenue"); !reflect.DeepEqual(got, want) {
		t.Errorf("revenue %+v, want %+v", got, want)
	}
	if st := h.Stats(); st.Late != 1 {
		t.Errorf("stats %+v: want the update late", st)
	}
	// A change committed at 10:04 arrives after the clock passed 10:11:
	// its 10:00 window is closed, its 9:55 one too.
	rows.Insert(newOrder(3, 9, "new", 5), topotest.CommittedAt(t0.Add(4*m)))
	want = []topotest.Window{win(0, 10*m, "", 1000), win(5*m, 10*m, "", 2100), win(10*m, 10*m, "", 100)}
	if got := h.Windows("revenue"); !reflect.DeepEqual(got, want) {
		t.Errorf("revenue after a late insert %+v, want %+v", got, want)
	}
	if st := h.Stats(); st.Late != 2 {
		t.Errorf("stats %+v: want 2 late changes", st)
	}
}

// Two Windowed nodes of one table, with other windows and series, keep
// their rows apart: the orders example's 1-minute and 1-hour windows.
func TestTwoWindowedNodesOfOneTable(t *testing.T) {
	perHour := func(o order) []topologies.WindowSample {
		return []topologies.WindowSample{{Series: "orders_1h", Value: 1}}
	}
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, topologies.Tumbling(time.Minute), windowMeasure),
		topologies.Windowed(orders, topologies.Hopping(time.Hour, 5*time.Minute), perHour)))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10), topotest.CommittedAt(t0))
	rows.Update(newOrder(1, 7, "paid", 10), topotest.CommittedAt(t0.Add(time.Minute)))
	if got := h.Windows("orders"); len(got) != 1 || got[0] != win(0, time.Minute, "", 1) {
		t.Errorf("orders: %+v", got)
	}
	if got := h.Windows("orders_1h"); len(got) != 12 || got[11] != win(0, time.Hour, "", 1) {
		t.Errorf("orders_1h: %+v", got)
	}
	if st := h.Stats(); st.DeadLetters != 0 || st.Changes != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestWindowsAreRemovedARetentionAfterTheirEnd(t *testing.T) {
	windows := topologies.Tumbling(time.Minute).Retain(10 * time.Minute)
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, windows, windowMeasure)))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10), topotest.CommittedAt(t0))
	rows.Insert(newOrder(2, 7, "new", 10), topotest.CommittedAt(t0.Add(10*time.Minute)))
	if got := h.Windows("orders"); len(got) != 2 {
		t.Fatalf("windows %+v: the 10:00 one ended 9m before, it is kept", got)
	}
	rows.Insert(newOrder(3, 7, "new", 10), topotest.CommittedAt(t0.Add(11*time.Minute)))
	want := []topotest.Window{win(10*time.Minute, time.Minute, "", 1), win(11*time.Minute, time.Minute, "", 1)}
	if got := h.Windows("orders"); !reflect.DeepEqual(got, want) {
		t.Errorf("windows %+v, want %+v: the 10:00 one ended a retention before 10:11", got, want)
	}
}

func TestWindowedMistakes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		windows topologies.Windows
		want    []string
	}{
		{"size not whole seconds", topologies.Tumbling(1500 * time.Millisecond), []string{"window size 1.5s"}},
		{"hop longer than the size", topologies.Hopping(time.Minute, time.Hour), []string{"window hop 1h0m0s", "at most the size"}},
		{"negative grace", topologies.Tumbling(time.Minute).Grace(-time.Second), []string{"grace -1s is negative"}},
		{"retention shorter than grace", topologies.Tumbling(time.Minute).Grace(time.Hour).Retain(time.Minute), []string{"retention 1m0s", "at least as long as their grace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := topologies.New("w", topologies.Windowed(orders, tc.windows, windowMeasure)).Validate()
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to say %q", err, w)
				}
			}
		})
	}
	err := topologies.New("w", topologies.Windowed(orders, topologies.Tumbling(time.Minute), windowMeasure),
		topologies.Windowed(orders, topologies.Tumbling(time.Minute).Grace(time.Second), windowMeasure)).Validate()
	if err == nil || !strings.Contains(err.Error(), "two Windowed nodes") {
		t.Errorf("two Windowed nodes of one table with the same windows: %v", err)
	}
	// Two nodes of one table with other windows may not write one series:
	// the second node's change goes to the dead letters.
	h := topotest.New(t, topologies.New("w", topologies.Windowed(orders, topologies.Tumbling(time.Minute), windowMeasure),
		topologies.Windowed(orders, topologies.Tumbling(time.Hour), windowMeasure)))
	topotest.Table(h, orders).Insert(newOrder(1, 7, "new", 10))
	if dead := h.DeadLetters(); len(dead) != 1 || !strings.Contains(dead[0].Err.Error(), "series orders: the series is kept by another Windowed node") {
		t.Errorf("two nodes writing one series: dead letters %+v", dead)
	}

	bad := func(o order) []topologies.WindowSample {
		if o.ID == 2 {
			return []topologies.WindowSample{{Series: "rows", Value: 1}}
		}
		return []topologies.WindowSample{{Series: "orders", Group: "a|b", Value: 1}}
	}
	h = topotest.New(t, topologies.New("w", topologies.Windowed(orders, topologies.Tumbling(time.Minute), bad)))
	rows := topotest.Table(h, orders)
	rows.Insert(newOrder(1, 7, "new", 10))
	rows.Insert(newOrder(2, 7, "new", 10))
	dead := h.DeadLetters()
	if len(dead) != 2 || !strings.Contains(dead[0].Err.Error(), "separates a window's label") || !strings.Contains(dead[1].Err.Error(), `series name "rows" is reserved`) {
		t.Errorf("dead letters %+v", dead)
	}
}
