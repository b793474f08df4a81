package capture

import (
	"encoding/hex"
	"fmt"
	"strconv"
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

// value parses PostgreSQL's text output of one value of column c into the Go
// type change.Row documents for c's type.
func (d *decoder) value(c change.Column, s string) (any, error) {
	if c.Elem != nil {
		elem := *c.Elem
		elem.Name, elem.TypeMod = c.Name, c.TypeMod
		return parseArray(s, arrayDelimiter(elem.Type), func(e string) (any, error) { return d.value(elem, e) })
	}
	if c.EnumValues != nil {
		return s, nil
	}
	switch c.Type {
	case "int2", "int4":
		n, err := strconv.ParseInt(s, 10, 32)
		return int32(n), err
	case "int8", "oid":
		return strconv.ParseInt(s, 10, 64)
	case "float4":
		f, err := strconv.ParseFloat(s, 32)
		return float32(f), err
	case "float8":
		return strconv.ParseFloat(s, 64)
	case "bool":
		return s == "t", nil
	case "numeric":
		return parseNumeric(s)
	case "money":
		return parseMoney(s)
	case "bytea":
		if !strings.HasPrefix(s, `\x`) {
			return nil, fmt.Errorf("bytea not in hex format; set bytea_output=hex")
		}
		return hex.DecodeString(s[2:])
	case "date", "timestamp", "timestamptz":
		switch s {
		case "infinity":
			return change.PositiveInfinity, nil
		case "-infinity":
			return change.NegativeInfinity, nil
		}
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
			return nil, fmt.Errorf("%s value %q is not a time", c.Type, s)
		}
		if c.Type == "timestamp" || c.Type == "date" {
			// no time zone: the wall clock reads as UTC, as Debezium reads it
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		return t.UTC(), nil
	case "time":
		return parseTime(s)
	case "timetz":
		return parseTimeTZ(s)
	case "interval":
		return parseInterval(s)
	case "hstore":
		return parseHstore(s)
	case "bit", "varbit":
		return parseBits(c.Type, c.TypeMod, s)
	case "point", "box", "lseg", "path", "polygon", "circle", "line":
		return parseGeometric(c.Type, s)
	default:
		return s, nil
	}
}
