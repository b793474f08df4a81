package topotest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// windowedNode applies changes as the processor's windowed Redis sink does
// (the script of redismetrics.Store.ApplyWindows): per row, the position of
// the last applied change, the row's anchor and the cells it is counted in;
// a change at or before that position changes nothing, a later one
// retracts the stored cells and counts the new version in the windows of
// the row's anchor, except in windows closed by the node's clock (the
// latest commit time applied).
type windowedNode struct{ node *engine.Windowed }

func (w windowedNode) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone
	}
	if ev.Op == change.OpTruncate {
		h.stats.Changes++
		h.deadLetter(rec, engine.TruncateWindowsError(ev, w.node))
		return nil
	}
	samples, err := w.node.Samples(ev.After)
	if err != nil { // the processor dead-letters it, and goes on
		h.deadLetter(rec, fmt.Errorf("measure change at %s of %s: %w", ev.Position, ev.TableName(), err))
		return nil
	}
	applied, late, err := h.windows.apply(w.node, engine.RowIdentity(rec.Topic, rec.Key), ev.Position, ev.Source.TsMs, ev.Op == change.OpCreate, samples)
	h.stats.Changes++
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("apply change at %s of %s: %w", ev.Position, ev.TableName(), err))
		return nil
	}
	switch {
	case !applied:
		h.stats.Duplicates++
	case late > 0:
		h.stats.Late++
	}
	return nil
}

// windowStore holds what Redis holds for a topology's windowed series.
type windowStore struct {
	rows   map[string]windowedRow      // the node's rows hash, " ", row identity → the row
	series map[string]map[string]int64 // series → field → value
	clock  map[string]int64            // topic → latest commit time applied (ms)
	pruned map[string]int64            // series → the cutoff it was last pruned at
	late   map[string]int64            // topic → late cells
	specs  map[string]engine.WindowedSpec
}

type windowedRow struct {
	pos      change.Position
	anchor   int64
	anchored bool // false once deleted
	cells    []engine.WindowCell
}

func newWindowStore() windowStore {
	return windowStore{rows: map[string]windowedRow{}, series: map[string]map[string]int64{},
		clock: map[string]int64{}, pruned: map[string]int64{}, late: map[string]int64{}, specs: map[string]engine.WindowedSpec{}}
}

func (s *windowStore) apply(n *engine.Windowed, row string, pos change.Position, commitMs int64, created bool, samples []engine.WindowSample) (applied bool, late int, err error) {
	row = n.RowsKeyName() + " " + row
	stored, ok := s.rows[row]
	if ok && stored.pos.Compare(pos) >= 0 {
		return false, 0, nil
	}
	spec := n.Spec()
	for _, sample := range samples {
		if other, ok := s.specs[sample.Series]; ok && other != spec {
			return false, 0, fmt.Errorf("apply windowed metrics: series %s: the series is kept by another Windowed node, of another table or with other windows; give each node's series their own names", sample.Series)
		}
	}
	next := windowedRow{pos: pos}
	var cells []engine.WindowCell
	if samples != nil {
		next.anchor, next.anchored = engine.Anchor(created, stored.anchor, stored.anchored, commitMs), true
		cells = n.CellsAt(samples, next.anchor)
	}
	clock := max(s.clock[n.Input], commitMs)
	s.clock[n.Input] = clock
	move := func(c engine.WindowCell, delta int64) {
		fields := s.series[c.Series]
		if fields == nil {
			fields = map[string]int64{}
			s.series[c.Series] = fields
		}
		if fields[c.Field()] += delta; fields[c.Field()] == 0 {
			delete(fields, c.Field())
		}
		if len(fields) == 0 {
			delete(s.series, c.Series)
		}
	}
	for _, c := range stored.cells {
		if c.End+spec.GraceMs > clock {
			move(c, -c.Value)
		} else {
			late++
		}
	}
	for _, c := range cells {
		if c.End+spec.GraceMs > clock {
			move(c, c.Value)
			next.cells = append(next.cells, c)
		} else {
			late++
		}
	}
	cutoff := commitMs - spec.SizeMs - spec.RetainMs
	cutoffLabel := engine.WindowField(cutoff, "")
	for _, c := range cells {
		s.specs[c.Series] = spec
		if last, ok := s.pruned[c.Series]; ok && cutoff < last+spec.HopMs {
			continue
		}
		for field := range s.series[c.Series] {
			if label, _, _ := strings.Cut(field, "|"); label <= cutoffLabel {
				delete(s.series[c.Series], field)
			}
		}
		if len(s.series[c.Series]) == 0 {
			delete(s.series, c.Series)
		}
		s.pruned[c.Series] = cutoff
	}
	s.late[n.Input] += int64(late)
	s.rows[row] = next
	return true, late, nil
}

// Window is one window of a windowed series, and what it holds for a group
// ("" for samples without one).
type Window struct {
	Start, End time.Time
	Group      string
	Value      int64
}

// Windows returns the windows of a windowed series that hold a value (none
// is zero), in the order of their start, then of their group. The windows
// are the series' windows as the harness's windowed node keeps them: a
// window is removed once a change committed a retention after its end was
// applied.
func (h *Harness) Windows(series string) []Window {
	h.helper.Helper()
	size := time.Duration(h.windows.specs[series].SizeMs) * time.Millisecond
	var out []Window
	for field, v := range h.windows.series[series] {
		start, group, err := engine.ParseWindowField(field)
		if err != nil {
			h.t.Fatalf("topotest: %v", err)
		}
		out = append(out, Window{Start: start, End: start.Add(size), Group: group, Value: v})
	}
	slices.SortFunc(out, func(a, b Window) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Group, b.Group)) })
	return out
}

// WindowedSeries returns the names of the windowed series that hold a
// window, in order.
func (h *Harness) WindowedSeries() []string {
	return slices.Sorted(maps.Keys(h.windows.series))
}
