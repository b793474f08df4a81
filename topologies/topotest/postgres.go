package topotest

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// postgresTable keeps what a PostgreSQL table of a Postgres node holds, as
// the processor's sink writes it: per key the version of the last write
// applied and the row it wrote, or a tombstone; a write at or below the
// version kept (a row's or a tombstone's) changes nothing. What only the
// real table checks (its column types and constraints) is not checked here.
type postgresTable struct {
	node *engine.PostgresTable
	rows map[string]*postgresRow // by key text
}

type postgresRow struct {
	key     []*string
	version *big.Int
	row     any
	deleted bool
}

func newPostgresTable(n *engine.PostgresTable) *postgresTable {
	return &postgresTable{node: n, rows: map[string]*postgresRow{}}
}

// apply applies a table node's change.
func (t *postgresTable) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone: the delete before it did the work
	}
	h.stats.Changes++
	w, err := t.node.Change(ev)
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("postgres table %s: %w", t.node.Target, err))
		return nil
	}
	if !t.write(w) {
		h.stats.Duplicates++
	}
	return nil
}

// state applies a new state of a read model's document, as the processor's
// sink over the read model's table does.
func (t *postgresTable) state(h *Harness, key string, st *engine.ModelState, rec Record) {
	h.stats.Changes++
	w, err := t.node.State(key, st)
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("postgres table %s: %w", t.node.Target, err))
		return
	}
	if !t.write(w) {
		h.stats.Duplicates++
	}
}

// write applies w unless the table keeps its key at w's version or a later
// one; it tells whether it applied it.
func (t *postgresTable) write(w engine.PostgresWrite) bool {
	v, _ := new(big.Int).SetString(w.Version, 10)
	k := w.KeyText()
	if kept := t.rows[k]; kept != nil && kept.version.Cmp(v) >= 0 {
		return false
	}
	t.rows[k] = &postgresRow{key: w.Key, version: v, row: w.Row, deleted: w.Delete}
	return true
}

// PostgresRow is a row of a Postgres node's table.
type PostgresRow[R any] struct {
	// Row is the row as the node made it.
	Row R
	// Version is the row's cdc_version: a change's position
	// (engine.PositionVersion) for a table node, the read model state's
	// version for a read model node, in decimal.
	Version string
}

// PostgresRows returns the rows node's PostgreSQL table holds, by key: the
// key columns' values, joined by ',' ("7", "7,2"). It fails the test if node
// is not a node of the harness's topology.
func PostgresRows[R any](h *Harness, node *topologies.PostgresNode[R]) map[string]PostgresRow[R] {
	h.helper.Helper()
	t := h.tables[node.Target()]
	if t == nil {
		h.t.Fatalf("topotest: topology %s keeps no postgres table %s", h.topo.Name, node.Target())
		return nil
	}
	out := map[string]PostgresRow[R]{}
	for _, r := range t.rows {
		if r.deleted {
			continue
		}
		parts := make([]string, len(r.key))
		for i, v := range r.key {
			parts[i] = *v
		}
		row, _ := r.row.(R)
		out[strings.Join(parts, ",")] = PostgresRow[R]{Row: row, Version: r.version.String()}
	}
	return out
}
