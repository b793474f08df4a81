package topologies

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/internal/engine"
)

// sqlRow writes values of the struct type R as rows of a PostgreSQL table:
// each exported field is a column, named as a row type's fields are (its
// `cdc:"column"` tag, or its name in snake_case; `cdc:"-"` leaves it out),
// of the SQL type its Go type maps to ([sqlType]), its value given as text
// that PostgreSQL casts to the column's type.
type sqlRow[R any] struct {
	fields []sqlField
}

type sqlField struct {
	index  int
	column engine.Column
	text   func(reflect.Value) (*string, error)
}

var rawJSONType = reflect.TypeFor[json.RawMessage]()

func newSQLRow[R any]() (*sqlRow[R], error) {
	t := reflect.TypeFor[R]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("row type %s is not a struct", t)
	}
	r := &sqlRow[R]{}
	for _, f := range structFields(t, "cdc") {
		ft := t.Field(f.index)
		typ, text, err := sqlType(ft.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s of %s: %w", ft.Name, t, err)
		}
		r.fields = append(r.fields, sqlField{index: f.index, column: engine.Column{Name: f.column, Type: typ}, text: text})
	}
	if len(r.fields) == 0 {
		return nil, fmt.Errorf("row type %s has no exported fields: nothing to write", t)
	}
	return r, nil
}

func (r *sqlRow[R]) columns() []engine.Column {
	cols := make([]engine.Column, len(r.fields))
	for i, f := range r.fields {
		cols[i] = f.column
	}
	return cols
}

// field returns the field of column name.
func (r *sqlRow[R]) field(name string) (sqlField, bool) {
	for _, f := range r.fields {
		if f.column.Name == name {
			return f, true
		}
	}
	return sqlField{}, false
}

// values returns the text of each column's value of v, nil for NULL.
func (r *sqlRow[R]) values(v R) ([]*string, error) {
	rv := reflect.ValueOf(v)
	out := make([]*string, len(r.fields))
	for i, f := range r.fields {
		x, err := f.text(rv.Field(f.index))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", f.column.Name, err)
		}
		out[i] = x
	}
	return out, nil
}

func text(s string) *string { return &s }

// sqlType returns the SQL type of the column a field of Go type t is
// written to, and how its value is written as text:
//
//	string (and types defined on it)  text
//	bool                              boolean
//	int8, int16                       smallint
//	int32                             integer
//	int, int64, uint8, uint16, uint32 bigint
//	uint, uint64                      numeric
//	float32 / float64                 real / double precision
//	*big.Rat                          numeric (its exact decimal)
//	time.Time                         timestamptz
//	time.Duration, change.MicroDuration  interval
//	[]byte                            bytea
//	json.RawMessage                   jsonb (as it is)
//	any other struct, map, slice, array  jsonb (encoding/json)
//
// A pointer is the type it points to, nil writing NULL; so do a nil slice,
// map and json.RawMessage.
func sqlType(t reflect.Type) (string, func(reflect.Value) (*string, error), error) {
	switch {
	case t == ratType:
		return "numeric", func(v reflect.Value) (*string, error) {
			if v.IsNil() {
				return nil, nil
			}
			return text(exactDecimal(v.Interface().(*big.Rat))), nil
		}, nil
	case t == timeType:
		return "timestamptz", func(v reflect.Value) (*string, error) {
			return text(v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)), nil
		}, nil
	case t == durationType || t == microDurationType:
		micro := func(v reflect.Value) int64 {
			if t == durationType {
				return v.Int() / int64(time.Microsecond)
			}
			return v.Int()
		}
		return "interval", func(v reflect.Value) (*string, error) {
			return text(strconv.FormatInt(micro(v), 10) + " microseconds"), nil
		}, nil
	case t == rawJSONType:
		return "jsonb", func(v reflect.Value) (*string, error) {
			if v.Len() == 0 {
				return nil, nil
			}
			return text(string(v.Bytes())), nil
		}, nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "bytea", func(v reflect.Value) (*string, error) {
			if v.IsNil() {
				return nil, nil
			}
			return text(`\x` + hex.EncodeToString(v.Bytes())), nil
		}, nil
	case t.Kind() == reflect.Pointer:
		typ, elem, err := sqlType(t.Elem())
		if err != nil {
			return "", nil, err
		}
		return typ, func(v reflect.Value) (*string, error) {
			if v.IsNil() {
				return nil, nil
			}
			return elem(v.Elem())
		}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return "text", func(v reflect.Value) (*string, error) { return text(v.String()), nil }, nil
	case reflect.Bool:
		return "boolean", func(v reflect.Value) (*string, error) { return text(strconv.FormatBool(v.Bool())), nil }, nil
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int, reflect.Int64:
		typ := map[reflect.Kind]string{reflect.Int8: "smallint", reflect.Int16: "smallint", reflect.Int32: "integer"}[t.Kind()]
		if typ == "" {
			typ = "bigint"
		}
		return typ, func(v reflect.Value) (*string, error) { return text(strconv.FormatInt(v.Int(), 10)), nil }, nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		typ := "bigint"
		if t.Kind() == reflect.Uint || t.Kind() == reflect.Uint64 || t.Kind() == reflect.Uintptr {
			typ = "numeric"
		}
		return typ, func(v reflect.Value) (*string, error) { return text(strconv.FormatUint(v.Uint(), 10)), nil }, nil
	case reflect.Float32, reflect.Float64:
		typ, bits := "double precision", 64
		if t.Kind() == reflect.Float32 {
			typ, bits = "real", 32
		}
		return typ, func(v reflect.Value) (*string, error) {
			f := v.Float()
			switch {
			case math.IsNaN(f):
				return text("NaN"), nil
			case math.IsInf(f, 1):
				return text("Infinity"), nil
			case math.IsInf(f, -1):
				return text("-Infinity"), nil
			}
			return text(strconv.FormatFloat(f, 'g', -1, bits)), nil
		}, nil
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return "jsonb", func(v reflect.Value) (*string, error) {
			if (v.Kind() == reflect.Map || v.Kind() == reflect.Slice || v.Kind() == reflect.Interface) && v.IsNil() {
				return nil, nil
			}
			b, err := json.Marshal(v.Interface())
			if err != nil {
				return nil, err
			}
			return text(string(b)), nil
		}, nil
	}
	return "", nil, fmt.Errorf("%s: no PostgreSQL column type is written from it", t)
}

// exactDecimal writes r in decimal: exactly when its denominator divides a
// power of ten (every numeric read from PostgreSQL does), else rounded to
// 30 digits after the point.
func exactDecimal(r *big.Rat) string {
	d := new(big.Int).Set(r.Denom())
	digits := 0
	for _, p := range []*big.Int{big.NewInt(2), big.NewInt(5)} {
		n := 0
		for rem := new(big.Int); ; n++ {
			q, m := new(big.Int).QuoRem(d, p, rem)
			if m.Sign() != 0 {
				break
			}
			d = q
		}
		digits = max(digits, n)
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		digits = 30
	}
	return r.FloatString(digits)
}

// keyOf returns how a read model's key becomes the value of its key column
// of Go type t: a string as it is, an integer parsed.
func keyOf(t reflect.Type) (func(string) ([]*string, error), error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return func(k string) ([]*string, error) { return []*string{text(k)}, nil }, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(k string) ([]*string, error) {
			if _, err := strconv.ParseInt(k, 10, t.Bits()); err != nil {
				return nil, fmt.Errorf("the key column is of %s, and the key %q is not one", t, k)
			}
			return []*string{text(k)}, nil
		}, nil
	}
	return nil, fmt.Errorf("a read model's key column holds the read model's key: make it a string or an integer field, not %s", t)
}
