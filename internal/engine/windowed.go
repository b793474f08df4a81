package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// Windows are the windows of a windowed aggregation: windows of Size that
// start every Hop (Hop == Size: tumbling), aligned to the Unix epoch, over
// the source commit time of changes. Grace is how long after its end a
// window still takes late contributions (by the commit times the node has
// seen, not the wall clock); Retain how long after its end a window is
// kept.
type Windows struct {
	Size, Hop, Grace, Retain time.Duration
}

// Describe says what the windows are, e.g. "1m tumbling windows (grace 1m,
// kept 24h)".
func (w Windows) Describe() string {
	kind := "tumbling"
	if w.Hop != w.Size {
		kind = "hopping by " + shortDuration(w.Hop)
	}
	return fmt.Sprintf("%s %s windows (grace %s, kept %s)", shortDuration(w.Size), kind, shortDuration(w.Grace), shortDuration(w.Retain))
}

// Tag names the windows' size and hop in Redis key names: "60s" for
// tumbling windows, "3600s-by-300s" for hopping ones.
func (w Windows) Tag() string {
	tag := fmt.Sprintf("%ds", int64(w.Size.Seconds()))
	if w.Hop != w.Size {
		tag += fmt.Sprintf("-by-%ds", int64(w.Hop.Seconds()))
	}
	return tag
}

// Validate reports what is wrong with w, all at once.
func (w Windows) Validate() error {
	var errs []error
	if w.Size <= 0 || w.Size%time.Second != 0 {
		errs = append(errs, fmt.Errorf("window size %s: use a positive whole number of seconds", w.Size))
	}
	if w.Hop <= 0 || w.Hop%time.Second != 0 || w.Hop > w.Size {
		errs = append(errs, fmt.Errorf("window hop %s: use a positive whole number of seconds, at most the size (%s)", w.Hop, w.Size))
	}
	if w.Grace < 0 {
		errs = append(errs, fmt.Errorf("grace %s is negative", w.Grace))
	}
	if w.Retain < w.Grace || w.Retain%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("retention %s: keep windows at least as long as their grace (%s), in whole milliseconds", w.Retain, w.Grace))
	}
	return errors.Join(errs...)
}

// Starts returns the start times (Unix milliseconds) of the windows the
// instant t (Unix milliseconds) falls in, latest first: every multiple s of
// Hop with s <= t < s+Size.
func (w Windows) Starts(t int64) []int64 {
	hop, size := w.Hop.Milliseconds(), w.Size.Milliseconds()
	if hop <= 0 || size <= 0 {
		return nil
	}
	var starts []int64
	for s := floorDiv(t, hop) * hop; s+size > t; s -= hop {
		starts = append(starts, s)
	}
	return starts
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// WindowSample is one row version's contribution to a windowed series:
// Value counts towards Series, and its Group when it has one, in every
// window the version's commit time falls in.
type WindowSample struct {
	Series string
	Group  string
	Value  int64
}

// Windowed keeps windowed aggregations over a table's rows: every row
// counts in the windows of its anchor (see [Anchor]), the commit time of
// the change that created it; an update moves its contribution within those
// windows, a delete removes it.
type Windowed struct {
	Input string
	// Debezium marks an Input another Debezium connector writes.
	Debezium bool
	RowType  string
	Windows  Windows
	// Decode reads a row into the user's row type; Contribute is the
	// user's measure function over it.
	Decode     func(change.Row) (any, error)
	Contribute func(row any) []WindowSample
	Err        error
}

// Describe implements Node.
func (n *Windowed) Describe() string {
	return fmt.Sprintf("windowed metrics over %s (rows as %s), %s", n.Input, n.RowType, n.Windows.Describe())
}

// Validate implements Node.
func (n *Windowed) Validate() error {
	errs := []error{n.Err, n.Windows.Validate()}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("windowed metrics over %s: %w", n.Input, err)
	}
	return nil
}

// Run implements Node.
func (n *Windowed) Run(rt Runtime) error { return rt.Windowed(n) }

// A WindowCell is what a row version contributes to one window of one
// series (and group): the unit the windowed sinks add and retract.
type WindowCell struct {
	Series string
	// Start and End bound the window, in Unix milliseconds: [Start, End).
	Start, End int64
	Group      string
	Value      int64
}

// Field is the cell's field in its series' hash: the window's label, then
// "|" and the group when it has one.
func (c WindowCell) Field() string { return WindowField(c.Start, c.Group) }

// WindowField is the field of the window starting at start (Unix
// milliseconds) and of group in a windowed series' hash: the start as
// RFC 3339 in UTC to the second ("2026-11-21T10:05:00Z", which sorts as
// text), then "|" and the group when there is one.
func WindowField(start int64, group string) string {
	label := time.UnixMilli(start).UTC().Format(WindowLabelLayout)
	if group == "" {
		return label
	}
	return label + "|" + group
}

// WindowLabelLayout is the time layout of a window's label.
const WindowLabelLayout = "2006-01-02T15:04:05Z"

// ParseWindowField splits a windowed series' hash field into its window's
// start and its group.
func ParseWindowField(field string) (start time.Time, group string, err error) {
	label, group, _ := strings.Cut(field, "|")
	start, err = time.Parse(WindowLabelLayout, label)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("window field %q: %w", field, err)
	}
	return start, group, nil
}

// Samples returns what row, a row of the node's table, contributes to the
// windowed series: nothing for a nil row (a deleted one). A sample of a
// series name the sinks keep their own state under, or whose group holds
// the '|' that separates a window's label from its group, is an error.
func (n *Windowed) Samples(row change.Row) ([]WindowSample, error) {
	if row == nil {
		return nil, nil
	}
	if n.Decode == nil {
		return nil, n.Validate()
	}
	v, err := n.Decode(row)
	if err != nil {
		return nil, err
	}
	samples := n.Contribute(v)
	for _, s := range samples {
		if err := CheckSeriesName(s.Series); err != nil {
			return nil, err
		}
		if strings.Contains(s.Group, "|") {
			return nil, fmt.Errorf("window sample group %q of series %s contains '|', which separates a window's label from its group; use another character", s.Group, s.Series)
		}
	}
	return samples, nil
}

// Anchor returns the time (Unix milliseconds) whose windows a row version
// counts in: the commit time of the change that created the row. created
// says whether the change is an insert; stored is the row's anchor as the
// sink keeps it (ok false when the row is new to the sink or was deleted);
// commitMs is the change's commit time. An insert anchors the row at its
// commit time; an update, or a snapshot read, keeps the row's anchor, or,
// for a row the sink has not seen created (captured before the sink
// started, or a snapshot read), anchors it at the change's commit time.
func Anchor(created bool, stored int64, ok bool, commitMs int64) int64 {
	if ok && !created {
		return stored
	}
	return commitMs
}

// CellsAt returns what samples contribute to the windows of a row anchored
// at anchorMs (Unix milliseconds): each sample in each window the anchor
// falls in.
func (n *Windowed) CellsAt(samples []WindowSample, anchorMs int64) []WindowCell {
	starts := n.Windows.Starts(anchorMs)
	size := n.Windows.Size.Milliseconds()
	cells := make([]WindowCell, 0, len(samples)*len(starts))
	for _, s := range samples {
		for _, start := range starts {
			cells = append(cells, WindowCell{Series: s.Series, Start: start, End: start + size, Group: s.Group, Value: s.Value})
		}
	}
	return cells
}

// The names, under a topology's Redis key prefix (<prefix>:<topology>:),
// that the metrics sinks keep their own state under: not series.
const (
	// RowsKeyName is the hash of each row's applied position and
	// contribution to the Metrics series.
	RowsKeyName = "rows"
	// WindowRowsKeyName, then ":" and the node's [Windows.Tag], names the
	// hash of each row's applied position, anchor and contribution to a
	// Windowed node's series.
	WindowRowsKeyName = "window-rows"
	// WindowedKeyName is the hash that describes the windowed series
	// (series|<name> → WindowedSpec as JSON) and keeps, per table, the
	// latest commit time the windowed node applied (clock|<topic>, Unix
	// milliseconds) and how many late contributions it dropped
	// (late|<topic>).
	WindowedKeyName = "windowed"
)

// RowsKeyName is the name of the hash of the node's rows (see
// [WindowRowsKeyName]).
func (n *Windowed) RowsKeyName() string { return WindowRowsKeyName + ":" + n.Windows.Tag() }

// IsStateName reports whether name, under a topology's Redis key prefix,
// is one the metrics sinks keep their own state under (or publish on):
// not a series.
func IsStateName(name string) bool {
	switch name {
	case RowsKeyName, WindowedKeyName, "updates":
		return true
	}
	return name == WindowRowsKeyName || strings.HasPrefix(name, WindowRowsKeyName+":")
}

// CheckSeriesName reports a series name that is one of the names the
// metrics sinks keep their own state under.
func CheckSeriesName(series string) error {
	if series == "" {
		return errors.New("a sample has no series name")
	}
	if IsStateName(series) {
		return fmt.Errorf("series name %q is reserved for the metrics sink's own state; name the series otherwise", series)
	}
	return nil
}

// RedisKey is the Redis key of name (a series, or one of the names above)
// of topology under the key prefix prefix: <prefix>:<topology>:<name>.
func RedisKey(prefix, topology, name string) string {
	return prefix + ":" + topology + ":" + name
}

// WindowedSpec describes a windowed series, as the windowed hash keeps it.
type WindowedSpec struct {
	Topic    string `json:"topic"`
	SizeMs   int64  `json:"size_ms"`
	HopMs    int64  `json:"hop_ms"`
	GraceMs  int64  `json:"grace_ms"`
	RetainMs int64  `json:"retain_ms"`
}

// Spec is the description of the node's series.
func (n *Windowed) Spec() WindowedSpec {
	w := n.Windows
	return WindowedSpec{Topic: n.Input, SizeMs: w.Size.Milliseconds(), HopMs: w.Hop.Milliseconds(),
		GraceMs: w.Grace.Milliseconds(), RetainMs: w.Retain.Milliseconds()}
}

// JSON is the spec as the windowed hash keeps it.
func (s WindowedSpec) JSON() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Windows returns the windows the spec describes.
func (s WindowedSpec) Windows() Windows {
	return Windows{Size: time.Duration(s.SizeMs) * time.Millisecond, Hop: time.Duration(s.HopMs) * time.Millisecond,
		Grace: time.Duration(s.GraceMs) * time.Millisecond, Retain: time.Duration(s.RetainMs) * time.Millisecond}
}

// The fields of the windowed hash.
const (
	WindowedSeriesField = "series|"
	WindowedClockField  = "clock|"
	WindowedLateField   = "late|"
)

// shortDuration prints d without zero units: 1m, 1h, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// TruncateWindowsError is why a Windowed node does not apply a truncate of
// its table: a window counts the changes committed in it, and a truncate
// rewrites no window; the truncated rows keep the contributions their last
// changes made, and rows inserted after it count as usual. The processor
// sends the truncate to the dead-letter topic with this error, and goes on.
func TruncateWindowsError(ev *change.Event, n *Windowed) error {
	return fmt.Errorf("truncate of %s at %s: the windowed metrics of %s keep every row's contribution to the windows of its commit time and do not apply truncates; the truncated rows still count in their windows",
		ev.TableName(), ev.Position, n.Input)
}
