package redismetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/redis/go-redis/v9"
)

// windowsScript applies one change to a topology's windowed series at most
// once, atomically, as applyScript does for its series: the window-rows
// hash keeps, per row, the position of the last applied change, the row's
// anchor (the commit time, in Unix milliseconds, its windows are those of;
// none once deleted) and the cells (series key, window field, value, window
// end) the row is counted in.
//
// The windowed hash keeps, per table, the node's clock: the latest commit
// time it applied. A window is closed once the clock is at or past its end
// plus the grace: a closed window is final, a change neither retracts from
// it nor adds to it (each cell it would have moved is late). Each series'
// windows that ended a retention before the change's own commit time are
// removed (checked at most once per hop of the series).
//
// The caller reads the row's anchor first and computes the cells from it
// (window labels are formatted in Go); the script refuses with -1, changing
// nothing, when the stored anchor is no longer the one the caller read.
//
// KEYS[1] the window-rows hash  KEYS[2] the windowed hash
// ARGV[1] row identity          ARGV[2] position (change.Position.String)
// ARGV[3] commit time (ms)      ARGV[4] the anchor the caller read ("" none)
// ARGV[5] the new anchor ("" for a deleted row)
// ARGV[6] the new cells, JSON [[series key, field, value, window end ms], ...]
// ARGV[7] notification channel  ARGV[8] the table's topic
// ARGV[9] grace (ms)            ARGV[10] hop (ms)
// ARGV[11] the spec, JSON       ARGV[12] the series, JSON [[name, key], ...]
// ARGV[13] prune cutoff (ms)    ARGV[14] prune cutoff's window label
//
// It returns {1 if applied, 0 if already applied, -1 if the anchor moved,
// -2 if a series is another node's (its spec differs); the number of late
// cells}.
var windowsScript = redis.NewScript(`
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local old, anchor = {}, ''
if stored then
  local st = cjson.decode(stored)
  if st.p >= ARGV[2] then
    return {0, 0}
  end
  old = st.s
  anchor = st.a or ''
end
if anchor ~= ARGV[4] then
  return {-1, 0}
end
for _, s in ipairs(cjson.decode(ARGV[12])) do
  local spec = redis.call('HGET', KEYS[2], 'series|' .. s[1])
  if spec and spec ~= ARGV[11] then
    return {-2, 0}
  end
end
local clockField = 'clock|' .. ARGV[8]
local clock = tonumber(redis.call('HGET', KEYS[2], clockField) or '0')
local t = tonumber(ARGV[3])
if t > clock then
  clock = t
  redis.call('HSET', KEYS[2], clockField, ARGV[3])
end
local grace, hop = tonumber(ARGV[9]), tonumber(ARGV[10])
local cells, order, late = {}, {}, 0
local function add(c, sign)
  local id = c[1] .. '\0' .. c[2]
  if cells[id] == nil then
    cells[id] = {c[1], c[2], 0}
    table.insert(order, id)
  end
  cells[id][3] = cells[id][3] + sign * c[3]
end
for _, c in ipairs(old) do
  if c[4] + grace > clock then
    add(c, -1)
  else
    late = late + 1
  end
end
local kept = {}
for _, c in ipairs(cjson.decode(ARGV[6])) do
  if c[4] + grace > clock then
    add(c, 1)
    table.insert(kept, c)
  else
    late = late + 1
  end
end
local deltas = {}
for _, id in ipairs(order) do
  local c = cells[id]
  if c[3] ~= 0 then
    if redis.call('HINCRBY', c[1], c[2], string.format('%d', c[3])) == 0 then
      redis.call('HDEL', c[1], c[2])
    end
    table.insert(deltas, {c[1], c[2], c[3]})
  end
end
local cutoff = tonumber(ARGV[13])
for _, s in ipairs(cjson.decode(ARGV[12])) do
  redis.call('HSET', KEYS[2], 'series|' .. s[1], ARGV[11])
  local prunedField = 'pruned|' .. s[1]
  local pruned = redis.call('HGET', KEYS[2], prunedField)
  if not pruned or cutoff >= tonumber(pruned) + hop then
    for _, field in ipairs(redis.call('HKEYS', s[2])) do
      if string.sub(field, 1, #ARGV[14]) <= ARGV[14] then
        redis.call('HDEL', s[2], field)
      end
    end
    redis.call('HSET', KEYS[2], prunedField, ARGV[13])
  end
end
local state = {p = ARGV[2], s = kept}
if ARGV[5] ~= '' then
  state.a = ARGV[5]
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(state))
if late > 0 then
  redis.call('HINCRBY', KEYS[2], 'late|' .. ARGV[8], late)
end
if #deltas > 0 then
  redis.call('PUBLISH', ARGV[7], cjson.encode({row = ARGV[1], position = ARGV[2], deltas = deltas}))
end
return {1, late}
`)

// windowRow is a row's state in the window-rows hash, as far as Go reads
// it.
type windowRow struct {
	Position string `json:"p"`
	Anchor   string `json:"a"`
}

// ErrSeriesTaken says a windowed series a change contributes to is kept
// by another Windowed node, of another table or with other windows:
// [Store.ApplyWindows] changed nothing. Retrying does not help; the
// processor sends the change to its dead-letter topic.
var ErrSeriesTaken = errors.New("the series is kept by another Windowed node, of another table or with other windows; give each node's series their own names")

// errAnchorMoved says the row's anchor changed between reading it and
// applying the change: another processor applied a change of the row (a
// rebalance hands partitions over).
var errAnchorMoved = errors.New("the row's stored anchor changed while the change was applied")

// ApplyWindows records that the row identified by row, at position pos,
// written by a change committed at commitMs (Unix milliseconds) that
// created it or not, now contributes samples (none for a deleted row) to
// node's windowed series: in the windows of the row's anchor
// ([engine.Anchor]), replacing its previous contribution, except in closed
// windows (see windowsScript), where it is late. It reports whether it
// applied the change (false, changing nothing, when Redis already reflects
// pos or a later change of the row) and how many cells were late.
func (m *Store) ApplyWindows(ctx context.Context, topology string, node *engine.Windowed, row string, pos change.Position, commitMs int64, created bool, samples []engine.WindowSample) (applied bool, late int, err error) {
	rowsKey := m.SeriesKey(topology, node.RowsKeyName())
	raw, err := m.client.HGet(ctx, rowsKey, row).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, fmt.Errorf("read windowed state of %s in Redis: %w", row, err)
	}
	var st windowRow
	if err == nil {
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return false, 0, fmt.Errorf("windowed state of %s in Redis hash %s is not the sink's: %w", row, rowsKey, err)
		}
		if st.Position >= pos.String() {
			return false, 0, nil
		}
	}
	args, _, err := m.windowArgs(topology, node, WindowChange{Row: row, Pos: pos, CommitMs: commitMs, Created: created, Samples: samples}, &st)
	if err != nil {
		return false, 0, err
	}
	res, err := windowsScript.Run(ctx, m.client, args.keys, args.argv...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("apply windowed metrics of %s at %s in Redis: %w", row, pos, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("apply windowed metrics of %s at %s in Redis: the script returned %v", row, pos, res)
	}
	switch res[0] {
	case -1:
		return false, 0, fmt.Errorf("apply windowed metrics of %s at %s in Redis: %w", row, pos, errAnchorMoved)
	case -2:
		return false, 0, fmt.Errorf("apply windowed metrics of %s at %s in Redis: series %s: %w", row, pos, args.series, ErrSeriesTaken)
	}
	return res[0] == 1, int(res[1]), nil
}

// scriptArgs are the keys and arguments of one call of a script.
type scriptArgs struct {
	keys   []string
	argv   []any
	series string // the series the change contributes to, for errors
}

// windowArgs computes the cells of c from the row's stored state st (nil:
// none) and returns the windows script's arguments and the row's new
// anchor.
func (m *Store) windowArgs(topology string, node *engine.Windowed, c WindowChange, st *windowRow) (scriptArgs, string, error) {
	if st == nil {
		st = &windowRow{}
	}
	storedAnchor, hasAnchor := int64(0), st.Anchor != ""
	rowsKey := m.SeriesKey(topology, node.RowsKeyName())
	if hasAnchor {
		var err error
		if storedAnchor, err = strconv.ParseInt(st.Anchor, 10, 64); err != nil {
			return scriptArgs{}, "", fmt.Errorf("windowed state of %s in Redis hash %s has anchor %q, not Unix milliseconds", c.Row, rowsKey, st.Anchor)
		}
	}
	var cells []engine.WindowCell
	newAnchor := ""
	if c.Samples != nil {
		anchor := engine.Anchor(c.Created, storedAnchor, hasAnchor, c.CommitMs)
		cells, newAnchor = node.CellsAt(c.Samples, anchor), strconv.FormatInt(anchor, 10)
	}
	encoded := make([][4]any, len(cells))
	series := [][2]string{}
	for i, cell := range cells {
		key := m.SeriesKey(topology, cell.Series)
		encoded[i] = [4]any{key, cell.Field(), cell.Value, cell.End}
		if !slices.ContainsFunc(series, func(s [2]string) bool { return s[0] == cell.Series }) {
			series = append(series, [2]string{cell.Series, key})
		}
	}
	newCells, err := json.Marshal(encoded)
	if err != nil {
		return scriptArgs{}, "", err
	}
	names, err := json.Marshal(series)
	if err != nil {
		return scriptArgs{}, "", err
	}
	spec := node.Spec()
	// Windows that ended a retention before the change's own commit time
	// have expired: the clock is at least as late.
	cutoff := c.CommitMs - spec.SizeMs - spec.RetainMs
	return scriptArgs{
		keys: []string{rowsKey, m.SeriesKey(topology, engine.WindowedKeyName)},
		argv: []any{c.Row, c.Pos.String(), c.CommitMs, st.Anchor, newAnchor, newCells,
			m.Channel(topology), node.Input, spec.GraceMs, spec.HopMs, spec.JSON(), names, cutoff, engine.WindowField(cutoff, "")},
		series: seriesNames(series),
	}, newAnchor, nil
}

// Window is one window of a windowed series and what it holds for a group
// ("" for samples without one).
type Window struct {
	Start, End time.Time
	Group      string
	Value      int64
}

// Windows reads a windowed series of topology as a time series: its
// windows that start in [from, to) and hold a value, in the order of their
// start, then of their group. A zero to reads to the last window. A series
// no Windowed node has written is an error.
func (m *Store) Windows(ctx context.Context, topology, series string, from, to time.Time) ([]Window, error) {
	raw, err := m.client.HGet(ctx, m.SeriesKey(topology, engine.WindowedKeyName), engine.WindowedSeriesField+series).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("topology %s has no windowed series %s in Redis: check the series name, and that its processor has applied a change", topology, series)
	}
	if err != nil {
		return nil, fmt.Errorf("read windowed series %s: %w", series, err)
	}
	var spec engine.WindowedSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return nil, fmt.Errorf("windowed series %s: its description %q is not the sink's: %w", series, raw, err)
	}
	values, err := m.Series(ctx, topology, series)
	if err != nil {
		return nil, err
	}
	size := time.Duration(spec.SizeMs) * time.Millisecond
	out := make([]Window, 0, len(values))
	for field, v := range values {
		start, group, err := engine.ParseWindowField(field)
		if err != nil {
			return nil, fmt.Errorf("windowed series %s: %w", series, err)
		}
		if start.Before(from) || !to.IsZero() && !start.Before(to) {
			continue
		}
		out = append(out, Window{Start: start, End: start.Add(size), Group: group, Value: v})
	}
	slices.SortFunc(out, func(a, b Window) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Group, b.Group)
	})
	return out, nil
}

func seriesNames(series [][2]string) string {
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s[0]
	}
	return strings.Join(names, ", ")
}
