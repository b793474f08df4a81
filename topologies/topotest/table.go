package topotest

import (
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// Rows feeds changes to the rows of one captured table, as typed values of
// its row type T. Build it with [Table]. Each change is built as capture
// builds it (see [topologies.Table.Row] for the column values), delivered to
// the node reading the table at once, and returned as the [Record] it is on
// the topic, to deliver again with [Harness.Redeliver].
//
// Positions are assigned in order: each change is a transaction of its own,
// at the next commit LSN, index 1; snapshot reads ([Rows.Read]) in a row share
// one position, index 0, as capture gives every row of a snapshot the
// snapshot's position. [At] gives a change a position of its own choosing
// (later changes come after the latest position fed).
type Rows[T any] struct {
	h      *Harness
	table  topologies.Table[T]
	key    []string
	full   bool
	prefix string
	schema string
	name   string
}

// TableOption configures a table's feed.
type TableOption interface{ applyTable(*tableConfig) }

type tableConfig struct {
	key  []string
	full bool
}

type tableOption func(*tableConfig)

func (o tableOption) applyTable(c *tableConfig) { o(c) }

// Key names the table's primary-key columns (default: id). A record's key
// holds them, the processors identify a row by them, and a delete carries
// only them (unless [ReplicaIdentityFull]).
func Key(columns ...string) TableOption {
	return tableOption(func(c *tableConfig) { c.key = columns })
}

// ReplicaIdentityFull gives the table REPLICA IDENTITY FULL: an update
// carries the row's previous version as Before (the one last fed; none if
// the row was never fed) and a delete the whole row.
// Without it (REPLICA IDENTITY DEFAULT, PostgreSQL's default) an update
// carries no Before and a delete only the key columns, with Debezium's
// fallback values in the others: 0, "", false, the epoch, a numeric 0
// (*big.Rat), empty bytes and arrays, and NULL for other pointer fields
// (taken for nullable columns).
func ReplicaIdentityFull() TableOption {
	return tableOption(func(c *tableConfig) { c.full = true })
}

// Table returns a feed of changes to table, one of the tables the harness's
// topology reads. It fails the test if the topology reads no such table, or
// if a key column is not a column of the row type.
func Table[T any](h *Harness, table topologies.Table[T], opts ...TableOption) *Rows[T] {
	h.helper.Helper()
	c := tableConfig{key: []string{"id"}}
	for _, o := range opts {
		o.applyTable(&c)
	}
	if _, ok := h.nodes[string(table.Topic)]; !ok {
		h.t.Fatalf("topotest: topology %s reads no topic %s (it reads %s)", h.topo.Name, string(table.Topic), strings.Join(h.inputs(), ", "))
	}
	columns, err := table.Row(*new(T))
	if err != nil {
		h.t.Fatalf("topotest: table %s: %v", string(table.Topic), err)
	}
	if len(c.key) == 0 {
		h.t.Fatalf("topotest: table %s: no key columns; name them with topotest.Key", string(table.Topic))
	}
	for _, k := range c.key {
		if _, ok := columns[k]; !ok {
			h.t.Fatalf("topotest: table %s: %T has no column %s to key rows by; name the primary-key columns with topotest.Key (columns: %s)",
				string(table.Topic), *new(T), k, strings.Join(sortedKeys(columns), ", "))
		}
	}
	r := &Rows[T]{h: h, table: table, key: c.key, full: c.full}
	// The topic is <prefix>.<schema>.<table>; the prefix may hold dots.
	parts := strings.Split(string(table.Topic), ".")
	if n := len(parts); n >= 3 {
		r.prefix, r.schema, r.name = strings.Join(parts[:n-2], "."), parts[n-2], parts[n-1]
	}
	if h.current[string(table.Topic)] == nil {
		h.current[string(table.Topic)] = map[string]change.Row{}
	}
	return r
}

// ChangeOption configures one change.
type ChangeOption interface{ applyChange(*changeConfig) }

type changeConfig struct {
	pos       *change.Position
	committed time.Time
}

type changeOption func(*changeConfig)

func (o changeOption) applyChange(c *changeConfig) { o(c) }

// At gives the change the position pos instead of the next one. A position
// at or before the row's last change makes a change the processors treat as
// already applied.
func At(pos change.Position) ChangeOption {
	return changeOption(func(c *changeConfig) { c.pos = &pos })
}

// CommittedAt sets the change's commit time in the source (source.ts_ms: an
// event's OccurredAt). Without it the commit time is 0, the Unix epoch.
func CommittedAt(t time.Time) ChangeOption {
	return changeOption(func(c *changeConfig) { c.committed = t })
}

// Insert feeds the insert of row (op c).
func (r *Rows[T]) Insert(row T, opts ...ChangeOption) Record {
	r.h.helper.Helper()
	return r.h.must(r.send(change.OpCreate, row, opts))
}

// Update feeds an update that leaves the row as row (op u). The key columns
// name the row; an update that changes them is, as capture sends it, a
// [Rows.Delete] of the old key and a [Rows.Insert] of the new one.
func (r *Rows[T]) Update(row T, opts ...ChangeOption) Record {
	r.h.helper.Helper()
	return r.h.must(r.send(change.OpUpdate, row, opts))
}

// Delete feeds the delete of row (op d); only its key columns matter unless
// the table has [ReplicaIdentityFull].
func (r *Rows[T]) Delete(row T, opts ...ChangeOption) Record {
	r.h.helper.Helper()
	return r.h.must(r.send(change.OpDelete, row, opts))
}

// Read feeds the snapshot read of row (op r), as capture sends every row a
// table holds when it starts.
func (r *Rows[T]) Read(row T, opts ...ChangeOption) Record {
	r.h.helper.Helper()
	return r.h.must(r.send(change.OpRead, row, opts))
}

// Truncate feeds a truncate of the table (op t), as capture publishes it
// when its SkippedOperations leave truncates in: no key, neither before nor
// after. The processors take it as the delete of every row of the table
// changed before it where they can (Metrics, Index nodes), and dead-letter
// it where they cannot (Events nodes, read models); the harness mirrors
// them.
func (r *Rows[T]) Truncate(opts ...ChangeOption) Record {
	r.h.helper.Helper()
	var c changeConfig
	for _, o := range opts {
		o.applyChange(&c)
	}
	pos := r.h.position(change.OpTruncate, c.pos)
	var ms int64
	if !c.committed.IsZero() {
		ms = c.committed.UnixMilli()
	}
	xid := int64(pos.CommitLSN)
	ev := &change.Event{Op: change.OpTruncate, Position: pos, TsMs: ms, Source: change.Source{
		Version: "topotest", Connector: "postgresql", Name: r.prefix, TsMs: ms, TsUs: ms * 1000, TsNs: ms * 1_000_000,
		Snapshot: "false", Sequence: change.SequenceFor(pos.CommitLSN, pos.CommitLSN), Schema: r.schema, Table: r.name,
		LSN: pos.CommitLSN, TxID: xid,
	}, Transaction: &change.Transaction{ID: fmt.Sprintf("%d:%d", xid, uint64(pos.CommitLSN)), TotalOrder: int64(pos.Index), DataCollectionOrder: int64(pos.Index)}}
	clear(r.h.current[string(r.table.Topic)])
	rec := Record{Topic: string(r.table.Topic), Event: ev}
	r.h.history = append(r.h.history, rec.clone())
	return r.h.must(rec, r.h.deliver(rec))
}

func (r *Rows[T]) send(op change.Op, v T, opts []ChangeOption) (Record, error) {
	var c changeConfig
	for _, o := range opts {
		o.applyChange(&c)
	}
	row, err := r.table.Row(v)
	if err != nil {
		return Record{}, fmt.Errorf("change (op %s) to %s: %w", op, string(r.table.Topic), err)
	}
	key := make(change.Row, len(r.key))
	for _, k := range r.key {
		key[k] = row[k]
	}
	pos := r.h.position(op, c.pos)
	var ms int64
	if !c.committed.IsZero() {
		ms = c.committed.UnixMilli()
	}
	snapshot := "false"
	if op == change.OpRead {
		snapshot = "true"
	}
	ev := &change.Event{Op: op, Position: pos, TsMs: ms, Source: change.Source{
		Version: "topotest", Connector: "postgresql", Name: r.prefix, TsMs: ms, TsUs: ms * 1000, TsNs: ms * 1_000_000,
		Snapshot: snapshot, Sequence: change.SequenceFor(pos.CommitLSN, pos.CommitLSN), Schema: r.schema, Table: r.name,
		LSN: pos.CommitLSN,
	}}
	if op != change.OpRead {
		// A streamed change belongs to its transaction; the harness makes
		// up a transaction id from the commit LSN.
		xid := int64(pos.CommitLSN)
		ev.Source.TxID = xid
		ev.Transaction = &change.Transaction{ID: fmt.Sprintf("%d:%d", xid, uint64(pos.CommitLSN)), TotalOrder: int64(pos.Index), DataCollectionOrder: int64(pos.Index)}
	}
	rows := r.h.current[string(r.table.Topic)]
	id := engine.RowIdentity(string(r.table.Topic), key)
	switch op {
	case change.OpCreate, change.OpRead:
		ev.After = row
		rows[id] = row
	case change.OpUpdate:
		ev.After = row
		if r.full {
			ev.Before = maps.Clone(rows[id]) // nil if the row was never fed
		}
		rows[id] = row
	case change.OpDelete:
		if ev.Before, err = r.keyOnly(key); err != nil {
			return Record{}, err
		}
		if r.full {
			ev.Before = row
			if prev, ok := rows[id]; ok {
				ev.Before = maps.Clone(prev)
			}
		}
		delete(rows, id)
	}
	rec := Record{Topic: string(r.table.Topic), Key: key, Event: ev}
	r.h.history = append(r.h.history, rec.clone())
	return rec, r.h.deliver(rec)
}

// keyOnly returns the before image of a delete under REPLICA IDENTITY
// DEFAULT: the key columns, and in the other columns the values Debezium
// writes for a required column the change did not carry (0, "", false, the
// epoch, empty bytes and arrays, a numeric 0); pointer fields other than
// *big.Rat are taken for nullable columns, and are NULL.
func (r *Rows[T]) keyOnly(key change.Row) (change.Row, error) {
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch {
		case !f.CanSet():
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Unix(0, 0).UTC()))
		case f.Type() == reflect.TypeFor[*big.Rat]():
			f.Set(reflect.ValueOf(new(big.Rat)))
		case f.Kind() == reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
		}
	}
	before, err := r.table.Row(v)
	if err != nil {
		return nil, err
	}
	maps.Copy(before, key)
	return before, nil
}

// position returns the position of the next change of kind op: explicit,
// the snapshot's, or the next commit's.
func (h *Harness) position(op change.Op, explicit *change.Position) change.Position {
	var pos change.Position
	switch {
	case explicit != nil:
		pos, h.snapshot = *explicit, nil
	case op == change.OpRead && h.snapshot != nil:
		return *h.snapshot
	case op == change.OpRead:
		pos = change.Position{CommitLSN: h.last.CommitLSN + 1}
		h.snapshot = &pos
	default:
		pos, h.snapshot = change.Position{CommitLSN: h.last.CommitLSN + 1, Index: 1}, nil
	}
	if pos.Compare(h.last) > 0 {
		h.last = pos
	}
	return pos
}
