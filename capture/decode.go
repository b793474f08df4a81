package capture

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// decoder turns pgoutput's text-format tuple values into Row values.
type decoder struct {
	types *pgtype.Map
}

func newDecoder() *decoder { return &decoder{types: pgtype.NewMap()} }

// row decodes a tuple of table t. Columns whose value pgoutput did not send
// (unchanged TOAST values, 'u') hold change.Unavailable.
func (d *decoder) row(t *change.Table, tuple *pglogrepl.TupleData) (change.Row, error) {
	if tuple == nil {
		return nil, nil
	}
	if len(tuple.Columns) != len(t.Columns) {
		return nil, fmt.Errorf("table %s: tuple has %d columns, relation has %d", t, len(tuple.Columns), len(t.Columns))
	}
	row := make(change.Row, len(t.Columns))
	for i, col := range tuple.Columns {
		c := t.Columns[i]
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			row[c.Name] = nil
		case pglogrepl.TupleDataTypeToast:
			row[c.Name] = change.Unavailable{} // an unchanged TOASTed value: not sent
		case pglogrepl.TupleDataTypeText:
			v, err := d.value(c, string(col.Data))
			if err != nil {
				return nil, fmt.Errorf("table %s column %s (%s): %w", t, c.Name, c.Type, err)
			}
			row[c.Name] = v
		default:
			return nil, fmt.Errorf("table %s column %s: unsupported tuple data type %q", t, c.Name, col.DataType)
		}
	}
	return row, nil
}

// keyRow returns the key columns of a key-only old tuple ('K').
func (d *decoder) keyRow(t *change.Table, tuple *pglogrepl.TupleData) (change.Row, error) {
	row, err := d.row(t, tuple)
	if err != nil {
		return nil, err
	}
	for _, c := range t.Columns {
		if !c.Key {
			delete(row, c.Name)
		}
	}
	return row, nil
}

// value parses PostgreSQL's text output of one value of column c.
func (d *decoder) value(c change.Column, s string) (any, error) {
	switch c.Type {
	case "int2", "int4":
		var n int32
		_, err := fmt.Sscan(s, &n)
		return n, err
	case "int8", "oid":
		var n int64
		_, err := fmt.Sscan(s, &n)
		return n, err
	case "float4":
		var f float32
		_, err := fmt.Sscan(s, &f)
		return f, err
	case "float8":
		var f float64
		_, err := fmt.Sscan(s, &f)
		return f, err
	case "bool":
		return s == "t", nil
	case "numeric":
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, fmt.Errorf("numeric %q has no exact decimal value", s)
		}
		return r, nil
	case "bytea":
		if !strings.HasPrefix(s, `\x`) {
			return nil, fmt.Errorf("bytea not in hex format; set bytea_output=hex")
		}
		return hex.DecodeString(s[2:])
	case "date", "timestamp", "timestamptz":
		typ, ok := d.types.TypeForOID(c.OID)
		if !ok {
			return nil, fmt.Errorf("no decoder for type oid %d", c.OID)
		}
		v, err := typ.Codec.DecodeValue(d.types, c.OID, pgtype.TextFormatCode, []byte(s))
		if err != nil {
			return nil, err
		}
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("%s value %q is not a finite time", c.Type, s)
		}
		if c.Type == "timestamp" || c.Type == "date" {
			// no time zone: the wall clock reads as UTC, as Debezium reads it
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		return t.UTC(), nil
	default:
		return s, nil
	}
}
