package redismetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
)

// Change is one change of a row for [Store.ApplyBatch]: what the row
// identified by Row contributes at Pos (nil for a deleted row).
type Change struct {
	Row     string
	Pos     change.Position
	Samples []topologies.Sample
}

// ApplyBatch applies changes in order, as [Store.Apply] applies each, in
// one round trip to Redis (a pipeline of the apply script): each change
// is applied atomically and at most once, so a batch cut short and sent
// again changes nothing twice. It reports, per change, whether it applied
// it; an error means some of the changes may not be applied.
func (m *Store) ApplyBatch(ctx context.Context, topology string, changes []Change) ([]bool, error) {
	keys, channel := m.stateKeys(topology), m.Channel(topology)
	cmds := make([]*redis.Cmd, len(changes))
	err := m.pipeline(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range changes {
			encoded, err := m.encodeSamples(topology, c.Samples)
			if err != nil {
				return err
			}
			table, _, _ := strings.Cut(c.Row, "|")
			cmds[i] = applyScript.EvalSha(ctx, pipe, keys, c.Row, c.Pos.String(), encoded, channel, table)
		}
		return nil
	}, applyScript)
	if err != nil {
		return nil, fmt.Errorf("apply metrics of %d changes in Redis: %w", len(changes), err)
	}
	applied := make([]bool, len(changes))
	for i, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("apply metrics of %s at %s in Redis: %w", changes[i].Row, changes[i].Pos, err)
		}
		applied[i] = n == 1
	}
	return applied, nil
}

// errNoScript says Redis did not hold a script the pipeline called (it
// was restarted, or its scripts flushed): the next attempt loads it.
var errNoScript = errors.New("redis lost the sink's scripts; they are loaded again")

// pipeline loads each of scripts into Redis unless it did before, queues
// fill's commands in a pipeline and sends it. A command error is left in
// its command, except NOSCRIPT: then scripts are loaded again on the next
// call, and pipeline fails with errNoScript (the commands that ran are
// idempotent: the caller sends them all again). Each script is tracked on
// its own: a pipeline calling one script never counts another as loaded.
func (m *Store) pipeline(ctx context.Context, fill func(redis.Pipeliner) error, scripts ...*redis.Script) error {
	for _, s := range scripts {
		if _, ok := m.loaded.Load(s.Hash()); ok {
			continue
		}
		if err := s.Load(ctx, m.client).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
		m.loaded.Store(s.Hash(), true)
	}
	pipe := m.client.Pipeline()
	if err := fill(pipe); err != nil {
		return err
	}
	cmds, err := pipe.Exec(ctx)
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && strings.HasPrefix(e.Error(), "NOSCRIPT") {
			for _, s := range scripts {
				m.loaded.Delete(s.Hash())
			}
			return errNoScript
		}
	}
	if err != nil && !isReplyError(err) {
		return err // the connection failed: no command's result can be trusted
	}
	return nil
}

func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

// encodeSamples encodes samples as the apply script takes them.
func (m *Store) encodeSamples(topology string, samples []topologies.Sample) ([]byte, error) {
	cells := make([][5]any, 0, len(samples))
	for _, s := range samples {
		kind := "h"
		if s.Ranked {
			kind = "z"
		}
		cells = append(cells, [5]any{m.SeriesKey(topology, s.Series), s.Bucket, s.Value, kind, int64(s.TTL.Seconds())})
	}
	return json.Marshal(cells)
}

// WindowChange is one change of a row for [Store.ApplyWindowsBatch], as
// [Store.ApplyWindows] takes it.
type WindowChange struct {
	Row      string
	Pos      change.Position
	CommitMs int64
	Created  bool
	Samples  []engine.WindowSample
}

// WindowResult is what [Store.ApplyWindowsBatch] did with one change:
// whether it applied it, how many of its cells were late; Err is
// [ErrSeriesTaken] for a change it could not apply (the change is not
// applied, and retrying does not help).
type WindowResult struct {
	Applied bool
	Late    int
	Err     error
}

// ApplyWindowsBatch applies changes in order to node's windowed series, as
// [Store.ApplyWindows] applies each, in two round trips to Redis: one reads
// the rows' stored states, one sends the changes in a pipeline, each
// computed from the state the changes before it in the batch leave. The
// changes whose row another writer changed meanwhile (their script refused
// the anchor the batch computed with, changing nothing) are then applied
// one by one, in order. It fails when some of the changes may not be
// applied; each is applied at most once, so sending them again is safe.
func (m *Store) ApplyWindowsBatch(ctx context.Context, topology string, node *engine.Windowed, changes []WindowChange) ([]WindowResult, error) {
	rowsKey := m.SeriesKey(topology, node.RowsKeyName())
	rows := make([]string, 0, len(changes))
	seen := map[string]bool{}
	for _, c := range changes {
		if !seen[c.Row] {
			seen[c.Row] = true
			rows = append(rows, c.Row)
		}
	}
	stored, err := m.client.HMGet(ctx, rowsKey, rows...).Result()
	if err != nil {
		return nil, fmt.Errorf("read windowed state of %d rows in Redis: %w", len(rows), err)
	}
	states := make(map[string]*windowRow, len(rows))
	for i, row := range rows {
		raw, ok := stored[i].(string)
		if !ok {
			continue
		}
		var st windowRow
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return nil, fmt.Errorf("windowed state of %s in Redis hash %s is not the sink's: %w", row, rowsKey, err)
		}
		states[row] = &st
	}
	results := make([]WindowResult, len(changes))
	cmds := make([]*redis.Cmd, len(changes))
	err = m.pipeline(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range changes {
			st := states[c.Row]
			if st != nil && st.Position >= c.Pos.String() {
				continue // applied already: results[i] says so
			}
			args, newAnchor, err := m.windowArgs(topology, node, c, st)
			if err != nil {
				return err
			}
			cmds[i] = windowsScript.EvalSha(ctx, pipe, args.keys, args.argv...)
			states[c.Row] = &windowRow{Position: c.Pos.String(), Anchor: newAnchor}
		}
		return nil
	}, windowsScript)
	if err != nil {
		return nil, fmt.Errorf("apply windowed metrics of %d changes in Redis: %w", len(changes), err)
	}
	var redo []int
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		c := changes[i]
		res, err := cmd.Int64Slice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("the script returned %v", res)
		}
		if err != nil {
			return nil, fmt.Errorf("apply windowed metrics of %s at %s in Redis: %w", c.Row, c.Pos, err)
		}
		switch res[0] {
		case -1: // the anchor the batch computed with is not the row's: changed nothing
			redo = append(redo, i)
		case -2:
			results[i].Err = fmt.Errorf("apply windowed metrics of %s at %s in Redis: %w", c.Row, c.Pos, ErrSeriesTaken)
		default:
			results[i] = WindowResult{Applied: res[0] == 1, Late: int(res[1])}
		}
	}
	for _, i := range redo { // in order: a row's changes stay in order
		c := changes[i]
		applied, late, err := m.ApplyWindows(ctx, topology, node, c.Row, c.Pos, c.CommitMs, c.Created, c.Samples)
		if err != nil && !errors.Is(err, ErrSeriesTaken) {
			return nil, err
		}
		results[i] = WindowResult{Applied: applied, Late: late, Err: err}
	}
	return results, nil
}
