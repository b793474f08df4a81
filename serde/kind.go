package serde

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// kind is how one column travels in Avro: the Avro type plus the Debezium
// semantic type (connect.name) that says how to read it.
type kind int

const (
	kindString kind = iota
	kindInt16
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBool
	kindBytes
	kindDecimal         // bytes, logicalType decimal, fixed scale
	kindVariableDecimal // io.debezium.data.VariableScaleDecimal record
	kindDate            // int, io.debezium.time.Date: days since the epoch
	kindMicroTimestamp  // long, io.debezium.time.MicroTimestamp
	kindZonedTimestamp  // string, io.debezium.time.ZonedTimestamp
	kindUUID            // string, io.debezium.data.Uuid
	kindJSON            // string, io.debezium.data.Json
)

// Debezium's semantic type names (the connect.name schema property).
const (
	connectDecimal        = "org.apache.kafka.connect.data.Decimal"
	connectVariableScale  = "io.debezium.data.VariableScaleDecimal"
	connectDate           = "io.debezium.time.Date"
	connectMicroTimestamp = "io.debezium.time.MicroTimestamp"
	connectZonedTimestamp = "io.debezium.time.ZonedTimestamp"
	connectUUID           = "io.debezium.data.Uuid"
	connectJSON           = "io.debezium.data.Json"
)

// columnType is a column's Avro representation.
type columnType struct {
	kind  kind
	scale int // kindDecimal
	prec  int // kindDecimal
}

// columnTypeOf maps a PostgreSQL column to its Avro representation the way
// Debezium does with its default settings (decimal.handling.mode=precise,
// time.precision.mode=adaptive). Types not listed travel as strings in
// PostgreSQL's text form.
func columnTypeOf(c change.Column) columnType {
	switch c.Type {
	case "int2":
		return columnType{kind: kindInt16}
	case "int4":
		return columnType{kind: kindInt}
	case "int8", "oid":
		return columnType{kind: kindLong}
	case "float4":
		return columnType{kind: kindFloat}
	case "float8":
		return columnType{kind: kindDouble}
	case "bool":
		return columnType{kind: kindBool}
	case "bytea":
		return columnType{kind: kindBytes}
	case "numeric":
		if c.TypeMod < 4 { // no (precision, scale): variable scale
			return columnType{kind: kindVariableDecimal}
		}
		mod := c.TypeMod - 4
		return columnType{kind: kindDecimal, prec: int(mod>>16) & 0xFFFF, scale: int(mod & 0xFFFF)}
	case "date":
		return columnType{kind: kindDate}
	case "timestamp":
		return columnType{kind: kindMicroTimestamp}
	case "timestamptz":
		return columnType{kind: kindZonedTimestamp}
	case "uuid":
		return columnType{kind: kindUUID}
	case "json", "jsonb":
		return columnType{kind: kindJSON}
	default:
		return columnType{kind: kindString}
	}
}

// variableScaleDecimalSchema is Debezium's record for numerics without a
// declared scale. Avro allows a named type to be defined once per schema;
// later uses refer to it by name.
func variableScaleDecimalSchema() map[string]any {
	return map[string]any{
		"type":            "record",
		"name":            "VariableScaleDecimal",
		"namespace":       "io.debezium.data",
		"fields":          []any{map[string]any{"name": "scale", "type": "int"}, map[string]any{"name": "value", "type": "bytes"}},
		"connect.doc":     "Variable scaled decimal",
		"connect.version": 1,
		"connect.name":    connectVariableScale,
	}
}

// schema returns the Avro schema of t and the name goavro knows it by inside
// a union. defined tracks named types already defined in the enclosing schema.
func (t columnType) schema(defined map[string]bool) (any, string) {
	semantic := func(avroType, connectName string) map[string]any {
		return map[string]any{"type": avroType, "connect.version": 1, "connect.name": connectName}
	}
	switch t.kind {
	case kindInt16:
		return map[string]any{"type": "int", "connect.type": "int16"}, "int"
	case kindInt:
		return "int", "int"
	case kindLong:
		return "long", "long"
	case kindFloat:
		return "float", "float"
	case kindDouble:
		return "double", "double"
	case kindBool:
		return "boolean", "boolean"
	case kindBytes:
		return "bytes", "bytes"
	case kindDecimal:
		return map[string]any{
			"type":            "bytes",
			"scale":           t.scale,
			"precision":       t.prec,
			"connect.version": 1,
			"connect.parameters": map[string]string{
				"scale":                     strconv.Itoa(t.scale),
				"connect.decimal.precision": strconv.Itoa(t.prec),
			},
			"connect.name": connectDecimal,
			"logicalType":  "decimal",
		}, "bytes.decimal"
	case kindVariableDecimal:
		if defined[connectVariableScale] {
			return connectVariableScale, connectVariableScale
		}
		defined[connectVariableScale] = true
		return variableScaleDecimalSchema(), connectVariableScale
	case kindDate:
		return semantic("int", connectDate), "int"
	case kindMicroTimestamp:
		return semantic("long", connectMicroTimestamp), "long"
	case kindZonedTimestamp:
		return semantic("string", connectZonedTimestamp), "string"
	case kindUUID:
		return semantic("string", connectUUID), "string"
	case kindJSON:
		return semantic("string", connectJSON), "string"
	default:
		return "string", "string"
	}
}

// zonedLayout is how Debezium prints a ZonedTimestamp: ISO-8601 in UTC with
// the fraction only as long as it needs to be.
const zonedLayout = "2006-01-02T15:04:05.999999999Z07:00"

// toAvro converts a Row value to goavro's native form for t.
func (t columnType) toAvro(v any) (any, error) {
	bad := func() error { return fmt.Errorf("value %v of type %T does not fit %s", v, v, t) }
	switch t.kind {
	case kindInt16, kindInt, kindDate:
		switch x := v.(type) {
		case int32:
			return x, nil
		case time.Time:
			if t.kind == kindDate {
				return int32(x.UTC().Unix() / 86400), nil
			}
		}
	case kindLong:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case kindMicroTimestamp:
		if x, ok := v.(time.Time); ok {
			return x.UnixMicro(), nil
		}
	case kindFloat:
		if x, ok := v.(float32); ok {
			return x, nil
		}
	case kindDouble:
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case kindBool:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case kindBytes:
		if x, ok := v.([]byte); ok {
			return x, nil
		}
	case kindDecimal:
		if x, ok := v.(*big.Rat); ok {
			return x, nil
		}
	case kindVariableDecimal:
		if x, ok := v.(*big.Rat); ok {
			unscaled, scale := unscale(x)
			return map[string]any{"scale": int32(scale), "value": twosComplement(unscaled)}, nil
		}
	case kindZonedTimestamp:
		if x, ok := v.(time.Time); ok {
			return x.UTC().Format(zonedLayout), nil
		}
	case kindString, kindUUID, kindJSON:
		if x, ok := v.(string); ok {
			return x, nil
		}
	}
	return nil, bad()
}

// fallback is the value Debezium writes for a required column whose value
// the change did not carry: zero, the empty string, the epoch.
func (t columnType) fallback() any {
	switch t.kind {
	case kindInt16, kindInt, kindDate:
		return int32(0)
	case kindLong, kindMicroTimestamp:
		return int64(0)
	case kindFloat:
		return float32(0)
	case kindDouble:
		return float64(0)
	case kindBool:
		return false
	case kindBytes:
		return []byte{}
	case kindDecimal:
		return new(big.Rat)
	case kindVariableDecimal:
		return map[string]any{"scale": int32(0), "value": []byte{0}}
	case kindZonedTimestamp:
		return time.Unix(0, 0).UTC().Format(zonedLayout)
	default:
		return ""
	}
}

// fromAvro converts goavro's native form for t back to a Row value.
func (t columnType) fromAvro(v any) (any, error) {
	switch t.kind {
	case kindDate:
		if d, ok := v.(int32); ok {
			return time.Unix(int64(d)*86400, 0).UTC(), nil
		}
	case kindMicroTimestamp:
		if us, ok := v.(int64); ok {
			return time.UnixMicro(us).UTC(), nil
		}
	case kindZonedTimestamp:
		if s, ok := v.(string); ok {
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("parse ZonedTimestamp %q: %w", s, err)
			}
			return ts.UTC(), nil
		}
	case kindVariableDecimal:
		if m, ok := v.(map[string]any); ok {
			scale, _ := m["scale"].(int32)
			b, _ := m["value"].([]byte)
			n := fromTwosComplement(b)
			return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)), nil
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("avro value %v of type %T does not fit %s", v, v, t)
}

func (t columnType) String() string {
	s, _ := t.schema(map[string]bool{})
	b, _ := json.Marshal(s)
	return string(b)
}

// unscale returns n and scale with x == n / 10^scale, the smallest such scale.
func unscale(x *big.Rat) (*big.Int, int) {
	num, den := new(big.Int).Set(x.Num()), x.Denom()
	scale := 0
	ten := big.NewInt(10)
	pow := big.NewInt(1)
	for new(big.Int).Mod(pow, den).Sign() != 0 {
		pow.Mul(pow, ten)
		scale++
		if scale > 1000 {
			break // not a terminating decimal; PostgreSQL numerics always are
		}
	}
	num.Mul(num, pow).Div(num, den)
	return num, scale
}

// twosComplement encodes n big-endian in two's complement, as Java's
// BigInteger.toByteArray does.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1): invert the bytes of |n|-1.
	m := new(big.Int).Sub(new(big.Int).Neg(n), big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

func fromTwosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	return n
}
