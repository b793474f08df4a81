package topologies

import (
	"errors"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// Windows are the time windows of a [Windowed] aggregation, over the commit
// time of changes in the source (source.ts_ms), never the wall clock: build
// them with [Tumbling] or [Hopping], then set their [Windows.Grace] and
// [Windows.Retain]. Windows are aligned to the Unix epoch in UTC: 1-minute
// windows start on the minute, 1-hour windows hopping by 5 minutes every 5
// minutes. A Windows is a value: its methods return a changed copy.
type Windows struct{ w engine.Windows }

// DefaultRetention is how long a window is kept after its end when
// [Windows.Retain] is not set.
const DefaultRetention = 24 * time.Hour

// Tumbling declares back-to-back windows of size: every commit time falls
// in exactly one. size is a whole number of seconds.
func Tumbling(size time.Duration) Windows {
	return Windows{engine.Windows{Size: size, Hop: size, Retain: DefaultRetention}}
}

// Hopping declares windows of size that start every advance: a commit time
// falls in size/advance of them (a 1-hour window hopping by 5 minutes is 12
// overlapping windows). size and advance are whole numbers of seconds,
// advance at most size.
func Hopping(size, advance time.Duration) Windows {
	return Windows{engine.Windows{Size: size, Hop: advance, Retain: DefaultRetention}}
}

// Grace lets a window take changes for d after its end. A window closes
// once the node has applied a change committed d or more after the
// window's end; a closed window is final: a later change of a row counted
// in it (an update, a delete) changes it no more, and a row created late
// does not count in it. Such a change is late (the processor counts it in
// Stats().Late and cdcflow_processor_late_changes_total); it still applies
// to the row's windows that are open. The default grace is 0: a window
// closes as soon as a change committed after its end is applied.
func (w Windows) Grace(d time.Duration) Windows {
	w.w.Grace = d
	return w
}

// Retain keeps a window for d after its end (default [DefaultRetention]);
// then it is removed from Redis. Like closing, removal follows the commit
// times of the changes, not the wall clock: a series' windows are removed
// once the node applies a change of the series committed d after their
// end. d is at least the grace.
func (w Windows) Retain(d time.Duration) Windows {
	w.w.Retain = d
	return w
}

// Size returns the windows' size, and Advance how often one starts (the
// size for tumbling windows).
func (w Windows) Size() time.Duration    { return w.w.Size }
func (w Windows) Advance() time.Duration { return w.w.Hop }

// String describes the windows: "1m tumbling windows (grace 1m, kept 24h)".
func (w Windows) String() string { return w.w.Describe() }

// WindowSample is one row's contribution to a windowed series: Value
// counts towards Series, and its Group when it has one (a status, a
// customer: a series per group, in each window), in every window the row's
// anchor falls in.
type WindowSample = engine.WindowSample

// WindowedNode keeps windowed aggregations over a table's rows. Build it
// with [Windowed].
type WindowedNode struct{ e *engine.Windowed }

// Windowed declares windowed aggregations over the rows of table, by source
// commit time: a row counts what measure says towards the windows of its
// anchor, the commit time of the insert that created it (orders per minute
// are the orders created in that minute). An update replaces the row's
// contribution in those same windows (an order's amount changed at 10:07
// changes the revenue of the 10:05 window it was created in) and a delete
// removes it; a row inserted again after a delete is anchored anew. A row
// the node first sees by an update or a snapshot read is anchored at that
// change's commit time. Each window of a series thus holds measure summed
// over the current rows created in it, exactly, whatever the order changes
// arrive in and however often they are delivered, until it closes (see
// [Windows.Grace]).
//
// The processor keeps each series in Redis, a hash <prefix>:<topology>:<series>
// of window → value (window labels such as 2026-11-21T10:05:00Z, then
// "|<group>" for a grouped sample), read back as a time series with
// redismetrics.Store.Windows and drawn by the dashboard. measure must be a
// pure function of the row. A topology has at most one Windowed node per
// table.
func Windowed[T any](table Table[T], windows Windows, measure func(T) []WindowSample) *WindowedNode {
	n := &engine.Windowed{Input: string(table.Topic), Debezium: table.Debezium, RowType: typeName[T](), Windows: windows.w}
	dec, err := newRowDecoder[T]()
	switch {
	case err != nil:
		n.Err = err
	case measure == nil:
		n.Err = errors.New("measure function is nil")
	default:
		n.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
		n.Contribute = func(row any) []WindowSample { return measure(row.(T)) }
	}
	return &WindowedNode{n}
}

// Windows returns the node's windows.
func (n *WindowedNode) Windows() Windows { return Windows{n.e.Windows} }

// Engine implements [Node].
func (n *WindowedNode) Engine() engine.Node { return n.e }
