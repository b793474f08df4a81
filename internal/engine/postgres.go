package engine

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// PostgresTable keeps a PostgreSQL table of rows: one per row of a change
// topic (a table node: Input is set), or one per document of a read model
// (a read model node: Model is set). Each row keeps the version of the
// write that set it (cdc_version) and a deleted row leaves a tombstone with
// its version, so that a write at or before it changes nothing.
type PostgresTable struct {
	// Target is the table, "table" or "schema.table".
	Target string
	// Key are the primary-key columns; Columns are every column a row
	// fills, key columns included, with the type a created table gives
	// them.
	Key     []string
	Columns []Column
	// RowType is the type of the rows written.
	RowType string
	// Input is a table node's change topic, SourceType its rows' type;
	// Decode reads a change's row into it.
	Input, SourceType string
	// Debezium marks an Input another Debezium connector writes.
	Debezium bool
	Decode   func(change.Row) (any, error)
	// Model is a read model node's read model.
	Model *ReadModel
	// Row makes the row written for src (a table node's decoded source row,
	// a read model node's document as JSON): the typed row, and the text
	// of each column's value in Columns order, nil for NULL.
	Row func(src any) (row any, values []*string, err error)
	// KeyOf returns the key columns' values of a read model key (a read
	// model node).
	KeyOf func(key string) ([]*string, error)
	Errs  []error
}

// Column is a column of a PostgreSQL table.
type Column struct {
	// Name is the column's name, Type the SQL type a table created for the
	// rows gives it (bigint, text, numeric, timestamptz, jsonb, ...).
	Name, Type string
}

// The columns every PostgresTable row has besides its own.
const (
	// VersionColumn orders the writes of one key (numeric): a write at or
	// below the version a row (or its tombstone) keeps changes nothing.
	VersionColumn = "cdc_version"
	// PositionColumn is the source position of the write (text, the form
	// of change.Position.String): the change's, or the latest of the rows
	// a read model's document is made of.
	PositionColumn = "cdc_position"
	// DeletedAtColumn is, in the tombstones table, the source commit time
	// of the delete (timestamptz).
	DeletedAtColumn = "cdc_deleted_at"
	// TombstoneSuffix names the tombstones table of a target: a row per
	// deleted key, with the version of its delete.
	TombstoneSuffix = "_cdc_deleted"
)

// sqlName is the form of table and column names: lower-case SQL
// identifiers that need no quoting.
var sqlName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// maxTableName leaves room for the tombstone suffix in PostgreSQL's 63
// bytes.
const maxTableName = 63 - len(TombstoneSuffix)

// SplitTarget returns the schema ("" for the search path's) and table of a
// target.
func SplitTarget(target string) (schema, table string) {
	if s, t, ok := strings.Cut(target, "."); ok {
		return s, t
	}
	return "", target
}

// Tombstones returns the tombstones table of a target.
func Tombstones(target string) string { return target + TombstoneSuffix }

// Describe implements Node.
func (n *PostgresTable) Describe() string {
	if n.Model != nil || n.Input == "" {
		name := "<nil>"
		if n.Model != nil {
			name = n.Model.Name
		}
		return fmt.Sprintf("postgres table %s over read model %s (rows as %s)", n.Target, name, n.RowType)
	}
	return fmt.Sprintf("postgres table %s over %s (rows as %s)", n.Target, n.Input, n.RowType)
}

// Validate implements Node.
func (n *PostgresTable) Validate() error {
	errs := slices.Clone(n.Errs)
	schema, table := SplitTarget(n.Target)
	switch {
	case n.Target == "":
		errs = append(errs, errors.New("the target table name is empty"))
	case strings.Count(n.Target, ".") > 1 || schema == "" && strings.Contains(n.Target, ".") || schema != "" && !sqlName.MatchString(schema) || !sqlName.MatchString(table):
		errs = append(errs, fmt.Errorf("target %q: name a table as table or schema.table, in lower-case letters, digits and '_'", n.Target))
	case len(table) > maxTableName:
		errs = append(errs, fmt.Errorf("target %q: the table name is longer than %d bytes (its tombstones table adds %q)", n.Target, maxTableName, TombstoneSuffix))
	}
	seen := map[string]bool{}
	for _, c := range n.Columns {
		switch {
		case !sqlName.MatchString(c.Name) || len(c.Name) > 63:
			errs = append(errs, fmt.Errorf("column %q: name columns in lower-case letters, digits and '_' (a `cdc:\"name\"` tag on the field)", c.Name))
		case c.Name == VersionColumn || c.Name == PositionColumn:
			errs = append(errs, fmt.Errorf("column %s is the table's own bookkeeping: rename the field (a `cdc:\"name\"` tag)", c.Name))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("two fields are column %s", c.Name))
		}
		seen[c.Name] = true
	}
	if len(n.Key) == 0 {
		errs = append(errs, errors.New("no primary-key columns: name them with topologies.PrimaryKey"))
	}
	for _, k := range n.Key {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("primary-key column %s is not a column of %s; name a column of the row type (or add the field)", k, n.RowType))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", n.Describe(), errors.Join(errs...))
	}
	return nil
}

// Run implements Node.
func (n *PostgresTable) Run(rt Runtime) error { return rt.Postgres(n) }

// PostgresWrite is what a change, or a read model's new state, writes to a
// PostgresTable: a row (Values), or the delete of a key (Delete).
type PostgresWrite struct {
	// Key are the key columns' values, in PostgresTable.Key order; Values
	// every column's, in PostgresTable.Columns order (nil for a delete).
	Key, Values []*string
	Delete      bool
	// Row is the typed row written (nil for a delete).
	Row any
	// Version orders the writes of one key: a decimal integer, stored in
	// VersionColumn. A table node's is the change's position
	// ([PositionVersion]), a read model node's the state's sink version.
	Version string
	// Position is the source position written to PositionColumn.
	Position change.Position
	// At is the source commit time of a delete (Unix ms, 0 when unknown).
	At int64
}

// KeyText names the key of w, for telling the writes of one key apart.
func (w *PostgresWrite) KeyText() string {
	var b strings.Builder
	for i, v := range w.Key {
		if i > 0 {
			b.WriteByte(0)
		}
		if v != nil {
			b.WriteString(*v)
		}
	}
	return b.String()
}

// PositionVersion is the version of a change at pos: its commit LSN, index
// and third part (a Debezium connector's, 0 for capture's) as one number
// of 160 bits, in decimal. It orders changes as positions do, with no
// bound (PostgreSQL's numeric holds it).
func PositionVersion(pos change.Position) string {
	v := new(big.Int).SetUint64(uint64(pos.CommitLSN))
	v.Lsh(v, 32)
	v.Or(v, new(big.Int).SetUint64(uint64(pos.Index)))
	v.Lsh(v, 64)
	v.Or(v, new(big.Int).SetUint64(pos.Sub))
	return v.String()
}

// Change returns the write of a table node for ev: the row of an insert,
// update or snapshot read, or the delete of the row's key.
func (n *PostgresTable) Change(ev *change.Event) (PostgresWrite, error) {
	if n.Decode == nil || n.Row == nil {
		return PostgresWrite{}, n.Validate()
	}
	src, del := ev.After, false
	if ev.Op == change.OpDelete {
		src, del = ev.Before, true
	}
	if src == nil {
		return PostgresWrite{}, fmt.Errorf("the %s change at %s of %s carries no row", ev.Op, ev.Position, ev.TableName())
	}
	decoded, err := n.Decode(src)
	if err != nil {
		return PostgresWrite{}, fmt.Errorf("decode change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	row, values, err := n.Row(decoded)
	if err != nil {
		return PostgresWrite{}, fmt.Errorf("row of change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	w := PostgresWrite{Version: PositionVersion(ev.Position), Position: ev.Position}
	if w.Key, err = n.pick(values); err != nil {
		return PostgresWrite{}, fmt.Errorf("row of change at %s of %s: %w", ev.Position, ev.TableName(), err)
	}
	if del {
		w.Delete, w.At = true, ev.Source.TsMs
		return w, nil
	}
	w.Values, w.Row = values, row
	return w, nil
}

// pick returns the key columns' values of a row's values.
func (n *PostgresTable) pick(values []*string) ([]*string, error) {
	key := make([]*string, len(n.Key))
	for i, k := range n.Key {
		j := slices.IndexFunc(n.Columns, func(c Column) bool { return c.Name == k })
		if j < 0 || j >= len(values) {
			return nil, fmt.Errorf("no value for primary-key column %s", k)
		}
		if values[j] == nil {
			return nil, fmt.Errorf("primary-key column %s is NULL", k)
		}
		key[i] = values[j]
	}
	return key, nil
}

// State returns the write of a read model node for the state st of the
// read model's key key: its document's row, or the delete of the key once
// the read model holds no document for it. Its version is the state's
// sink version.
func (n *PostgresTable) State(key string, st *ModelState) (PostgresWrite, error) {
	if n.Row == nil || n.KeyOf == nil {
		return PostgresWrite{}, n.Validate()
	}
	keys, err := n.KeyOf(key)
	if err != nil {
		return PostgresWrite{}, fmt.Errorf("read model key %q: %w", key, err)
	}
	w := PostgresWrite{Key: keys, Version: strconv.FormatInt(st.SinkVersion(), 10), Position: st.Version}
	if st.Document == nil {
		w.Delete = true
		if st.Root != nil {
			w.At = st.Root.At
		}
		return w, nil
	}
	if w.Row, w.Values, err = n.Row(st.Document); err != nil {
		return PostgresWrite{}, fmt.Errorf("row of document %s: %w", key, err)
	}
	// The key columns hold the read model's key, whatever the document
	// says: a delete, which has only the key, must find the row.
	for i, k := range n.Key {
		if j := slices.IndexFunc(n.Columns, func(c Column) bool { return c.Name == k }); j >= 0 && j < len(w.Values) {
			w.Values[j] = keys[i]
		}
	}
	return w, nil
}
