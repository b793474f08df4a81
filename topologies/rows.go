package topologies

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cdcflow/cdcflow/change"
)

// rowDecoder fills a T from a change.Row. Fields map to columns by their
// `cdc:"column"` tag, or by their name in snake_case; `cdc:"-"` skips a
// field. A pointer field takes NULL as nil; a non-pointer field takes NULL as
// its zero value.
type rowDecoder[T any] struct {
	fields []rowField
}

type rowField struct {
	index  int
	column string
}

var (
	ratType           = reflect.TypeOf((*big.Rat)(nil))
	durationType      = reflect.TypeOf(time.Duration(0))
	microDurationType = reflect.TypeFor[change.MicroDuration]()
	timeType          = reflect.TypeFor[time.Time]()
	anyType           = reflect.TypeFor[any]()
)

func newRowDecoder[T any]() (*rowDecoder[T], error) {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("row type %s is not a struct", t)
	}
	return &rowDecoder[T]{fields: structFields(t, "cdc")}, nil
}

// structFields names the exported fields of the struct type t: by their tag
// key tag, or by their name in snake_case; a tag "-" leaves a field out.
func structFields(t reflect.Type, tag string) []rowField {
	var fields []rowField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get(tag)
		if name == "-" {
			continue
		}
		if name == "" {
			name = snake(f.Name)
		}
		fields = append(fields, rowField{index: i, column: name})
	}
	return fields
}

// decode converts row to a T. A column missing from the row leaves its field
// at the zero value.
func (d *rowDecoder[T]) decode(row change.Row) (T, error) {
	var out T
	v := reflect.ValueOf(&out).Elem()
	for _, f := range d.fields {
		x, ok := row[f.column]
		if !ok || x == nil {
			continue
		}
		if _, ok := x.(change.Unavailable); ok {
			return out, fmt.Errorf("column %s: the source did not send its value (an unchanged TOASTed value); give the table REPLICA IDENTITY FULL, or leave field %s out of %s", f.column, v.Type().Field(f.index).Name, v.Type())
		}
		if err := assign(v.Field(f.index), x); err != nil {
			return out, fmt.Errorf("column %s into field %s: %w", f.column, v.Type().Field(f.index).Name, err)
		}
	}
	return out, nil
}

// encode converts v to the Row capture would send for it: the inverse of
// decode. Every mapped field becomes a column (see [Table.Row] for the
// values).
func (d *rowDecoder[T]) encode(v T) (change.Row, error) {
	rv := reflect.ValueOf(v)
	row := make(change.Row, len(d.fields))
	for _, f := range d.fields {
		x, err := columnValue(rv.Field(f.index))
		if err != nil {
			return nil, fmt.Errorf("field %s of %s: %w", rv.Type().Field(f.index).Name, rv.Type(), err)
		}
		row[f.column] = x
	}
	return row, nil
}

// columnValue returns v as capture sends a column's value (see change.Row
// for the Go type of each column type).
func columnValue(v reflect.Value) (any, error) {
	t := v.Type()
	switch {
	case t == ratType: // numeric: copied, so that the row does not share it
		if v.IsNil() {
			return nil, nil
		}
		return new(big.Rat).Set(v.Interface().(*big.Rat)), nil
	case t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface: // NULL or the value
		if v.IsNil() {
			return nil, nil
		}
		return columnValue(v.Elem())
	case t == timeType:
		return v.Interface().(time.Time).UTC(), nil
	case t == durationType: // time: since midnight
		return time.Duration(v.Int()), nil
	case t == microDurationType: // interval
		return change.MicroDuration(v.Int()), nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8: // bytea
		if v.IsNil() {
			return nil, nil
		}
		return bytes.Clone(v.Bytes()), nil
	case t.Kind() == reflect.Slice && t.Elem() == anyType: // an array
		if v.IsNil() {
			return nil, nil
		}
		elems := make([]any, v.Len())
		for i := range elems {
			x, err := columnValue(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			elems[i] = x
		}
		return elems, nil
	}
	switch t.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32: // smallint, integer
		return int32(v.Int()), nil
	case reflect.Int, reflect.Int64: // bigint
		return v.Int(), nil
	case reflect.Float32:
		return float32(v.Float()), nil
	case reflect.Float64:
		return v.Float(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.String: // text, enums, json, uuid, ...
		return v.String(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return nil, fmt.Errorf("%s: PostgreSQL has no unsigned integers, so no column reads into it; use int64", t)
	}
	return nil, fmt.Errorf("%s: no column type reads into it (change.Row lists the Go types columns arrive as); json, jsonb and hstore arrive as a string, arrays as []any", t)
}

func assign(dst reflect.Value, x any) error {
	if dst.Kind() == reflect.Pointer && dst.Type() != ratType {
		p := reflect.New(dst.Type().Elem())
		if err := assign(p.Elem(), x); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	src := reflect.ValueOf(x)
	switch {
	case src.Type().AssignableTo(dst.Type()):
		dst.Set(src)
	case dst.Type() == ratType:
		// numeric and money under decimal.handling.mode string or double
		var r *big.Rat
		switch v := x.(type) {
		case string:
			r, _ = new(big.Rat).SetString(v)
		case float64:
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				r, _ = new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if r == nil {
			return fmt.Errorf("cannot assign %T %v to *big.Rat", x, x)
		}
		dst.Set(reflect.ValueOf(r))
	case dst.Type() == durationType && src.Type() == microDurationType:
		us := x.(change.MicroDuration) // an interval: microseconds
		if us > math.MaxInt64/1000 || us < math.MinInt64/1000 {
			return fmt.Errorf("interval of %d µs overflows time.Duration (±292 years); use a change.MicroDuration or int64 field", us)
		}
		dst.SetInt(int64(us.Duration()))
	case src.CanInt() && dst.CanInt():
		if dst.OverflowInt(src.Int()) {
			return fmt.Errorf("%d overflows %s", src.Int(), dst.Type())
		}
		dst.SetInt(src.Int())
	case src.CanFloat() && dst.CanFloat():
		dst.SetFloat(src.Float())
	case src.Type() == ratType && dst.CanFloat():
		f, _ := x.(*big.Rat).Float64()
		dst.SetFloat(f)
	case src.Kind() == reflect.String && dst.Kind() == reflect.String:
		dst.SetString(src.String())
	default:
		return fmt.Errorf("cannot assign %T to %s", x, dst.Type())
	}
	return nil
}

func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
