package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pgx/v5"
)

// Rows reads the current rows of captured tables as a snapshot publishes
// them: the columns capture publishes (excluded columns left out, masked
// ones hashed), each value parsed into the Go type [change.Row] documents
// for its column type by the code that parses pgoutput's text (the row
// before it is encoded: a numeric NaN is a float64 NaN, which the precise
// decimal encoding publishes as null). Every read
// of a Rows runs in one REPEATABLE READ transaction, so that the rows of
// several tables are those of one moment. A Rows is not safe for
// concurrent use.
type Rows struct {
	conn *pgx.Conn
	cfg  Config
	dec  *decoder
}

// OpenRows connects to PostgreSQL with cfg.DSN and starts the read-only
// transaction the reads share. Of cfg it reads DSN, ExcludeColumns,
// MaskColumns and MaskSalt. Close the Rows when done.
func OpenRows(ctx context.Context, cfg Config) (*Rows, error) {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("begin a read-only transaction: %w", err)
	}
	return &Rows{conn: conn, cfg: cfg, dec: newDecoder()}, nil
}

// Read calls fn with every row of the table schema.table, in no particular
// order: key holds its key columns, row every column capture publishes. It
// stops at the first error, fn's or its own, and returns it.
func (r *Rows) Read(ctx context.Context, schema, table string, fn func(key, row change.Row) error) error {
	src, _, err := tableColumns(ctx, r.conn, schema, table)
	if err != nil {
		return err
	}
	if len(src.Columns) == 0 {
		return fmt.Errorf("table %s.%s does not exist, or has no columns", schema, table)
	}
	rel, err := newRelation(&r.cfg, src)
	if err != nil {
		return err
	}
	cols := make([]string, len(src.Columns))
	for i, col := range src.Columns {
		cols[i] = pgx.Identifier{col.Name}.Sanitize()
	}
	sql := fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), pgx.Identifier{schema, table}.Sanitize())
	rr := r.conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil)
	for rr.NextRow() {
		row, err := r.dec.textRow(rel.pub, rel.values(r.cfg.MaskSalt, rr.Values()))
		if err == nil {
			err = fn(keyOf(rel.pub, row), row)
		}
		if err != nil {
			rr.Close()
			return fmt.Errorf("table %s.%s: %w", schema, table, err)
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("read table %s.%s: %w", schema, table, err)
	}
	return nil
}

// Close ends the transaction and the connection.
func (r *Rows) Close() error {
	return r.conn.Close(context.Background())
}

// textRow decodes a row of table t read in text format, one value per
// column; the error names the column that cannot be decoded.
func (d *decoder) textRow(t *change.Table, vals [][]byte) (change.Row, error) {
	if len(vals) != len(t.Columns) {
		return nil, errors.New("the row has another number of columns than the table")
	}
	row := make(change.Row, len(t.Columns))
	for i, col := range t.Columns {
		if vals[i] == nil {
			row[col.Name] = nil
			continue
		}
		v, err := d.value(col, string(vals[i]))
		if err != nil {
			return nil, fmt.Errorf("column %s (%s): %w", col.Name, col.Type, err)
		}
		row[col.Name] = v
	}
	return row, nil
}

// keyOf returns the key columns of row, a row of t.
func keyOf(t *change.Table, row change.Row) change.Row {
	key := change.Row{}
	for _, c := range t.KeyColumns() {
		key[c.Name] = row[c.Name]
	}
	return key
}
