package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// PostgresNode keeps a PostgreSQL table of rows of type R: one per row of a
// captured table ([Postgres]) or per document of a read model
// ([PostgresReadModel]), upserted on every change and deleted with its row
// or document. Each row keeps, in the column cdc_version, the version of the
// write that set it (a change's position, a read model state's version),
// and a deleted row leaves a tombstone with the version of its delete in
// the table <target>_cdc_deleted: a write at or before what a row or its
// tombstone keeps changes nothing, so a redelivery or a replay changes
// nothing, and an older change never overwrites a newer one.
//
// Columns are R's fields, named as a row type's are (a `cdc:"column"`
// tag, or the field's name in snake_case; `cdc:"-"` leaves one out), typed
// after their Go types: string is text, int64 bigint, int32 integer, bool
// boolean, float64 double precision, *big.Rat numeric, time.Time
// timestamptz, time.Duration interval, []byte bytea, json.RawMessage and
// other structs, maps and slices jsonb; a nil pointer is NULL. The
// processor creates the table if it is missing (with the key columns as
// its primary key, every other column nullable, and cdc_version and
// cdc_position), adds the columns it lacks when R gains fields, and never
// drops or changes one: a table created beforehand may give columns other
// types and constraints, and a row the table refuses (a value its
// constraints reject) goes to the dead-letter topic.
type PostgresNode[R any] struct{ e *engine.PostgresTable }

// PostgresOption configures a [PostgresNode].
type PostgresOption interface {
	applyPostgres(*postgresConfig)
}

type postgresConfig struct{ key []string }

type postgresOption func(*postgresConfig)

func (o postgresOption) applyPostgres(c *postgresConfig) { o(c) }

// PrimaryKey names the primary-key columns of a [PostgresNode]'s table:
// for [Postgres], columns of the row type (default "id"); for
// [PostgresReadModel], the one column that holds the read model's key
// (default "key", a text column of its own unless the document has a field
// of that name): a string or integer field of the document.
func PrimaryKey(columns ...string) PostgresOption {
	return postgresOption(func(c *postgresConfig) { c.key = slices.Clone(columns) })
}

func postgresOptions(opts []PostgresOption, key ...string) postgresConfig {
	c := postgresConfig{key: key}
	for _, o := range opts {
		if o != nil {
			o.applyPostgres(&c)
		}
	}
	return c
}

// Postgres declares the PostgreSQL table target ("table" or
// "schema.table", lower-case) over the current rows of table: row makes
// the target row of a source row. An insert, update or snapshot read
// upserts the row, a delete deletes it, so the target always holds row
// applied to every row of the table. Key columns: [PrimaryKey], "id" by
// default. row must be a pure function, and compute the key columns from
// the source row's primary-key columns only: a delete carries only those
// (with REPLICA IDENTITY DEFAULT), and the key of the row to delete is
// computed from them.
func Postgres[T, R any](table Table[T], target string, row func(T) R, opts ...PostgresOption) *PostgresNode[R] {
	n := &engine.PostgresTable{Target: target, Input: string(table.Topic), Debezium: table.Debezium, SourceType: typeName[T](), RowType: typeName[R](),
		Key: postgresOptions(opts, "id").key}
	dec, err := newRowDecoder[T]()
	if err != nil {
		n.Errs = append(n.Errs, err)
	}
	w, err := newSQLRow[R]()
	if err != nil {
		n.Errs = append(n.Errs, err)
	} else {
		n.Columns = w.columns()
	}
	if row == nil {
		n.Errs = append(n.Errs, errors.New("row function is nil"))
	}
	if len(n.Errs) > 0 {
		return &PostgresNode[R]{n}
	}
	n.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.Row = func(src any) (any, []*string, error) {
		r := row(src.(T))
		values, err := w.values(r)
		return r, values, err
	}
	return &PostgresNode[R]{n}
}

// PostgresReadModel declares the PostgreSQL table target ("table" or
// "schema.table", lower-case) over the documents of the read model model,
// which must be a node of the same topology: a row per document, whose
// columns are the document's fields, under the read model's key (in the
// column [PrimaryKey] names, "key" by default). A document is upserted
// whenever it changes and its row deleted when it disappears (its root row
// deleted).
//
// The processor reads the read model's table, and versions each row by
// the read model's version of the document's state (a count of the changes
// applied to it, in the generation of the table that applied them), so
// that a replay or a redelivery changes nothing, and a read model rebuilt
// from the start (a new table, a later generation) writes over what the
// one it replaces left.
func PostgresReadModel[V any](model *ReadModelNode[V], target string, opts ...PostgresOption) *PostgresNode[V] {
	key := postgresOptions(opts, "key").key
	n := &engine.PostgresTable{Target: target, RowType: typeName[V](), Key: key}
	if len(key) != 1 {
		n.Errs = append(n.Errs, fmt.Errorf("PrimaryKey names %d columns; a read model's table has one key column, which holds the read model's key", len(key)))
	}
	if model == nil {
		n.Errs = append(n.Errs, errors.New("the read model is nil"))
	} else {
		n.Model = model.e
	}
	w, err := newSQLRow[V]()
	if err != nil {
		n.Errs = append(n.Errs, err)
	}
	if len(n.Errs) > 0 {
		return &PostgresNode[V]{n}
	}
	n.Columns = w.columns()
	prepend := false
	if f, ok := w.field(key[0]); ok {
		if n.KeyOf, err = keyOf(reflect.TypeFor[V]().Field(f.index).Type); err != nil {
			n.Errs = append(n.Errs, fmt.Errorf("key column %s: %w", key[0], err))
		}
	} else {
		// A column of its own, first.
		prepend = true
		n.Columns = append([]engine.Column{{Name: key[0], Type: "text"}}, n.Columns...)
		n.KeyOf, _ = keyOf(reflect.TypeFor[string]())
	}
	n.Row = func(src any) (any, []*string, error) {
		var v V
		if err := json.Unmarshal(src.(json.RawMessage), &v); err != nil {
			return nil, nil, fmt.Errorf("decode document as %s: %w", n.RowType, err)
		}
		values, err := w.values(v)
		if prepend {
			values = append([]*string{nil}, values...) // the key, which State fills in
		}
		return v, values, err
	}
	return &PostgresNode[V]{n}
}

// Target returns the table the node keeps.
func (n *PostgresNode[R]) Target() string { return n.e.Target }

// Engine implements [Node].
func (n *PostgresNode[R]) Engine() engine.Node { return n.e }
