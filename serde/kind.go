package serde

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
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
	kindDecimalDouble   // double: numeric or money under decimal.handling.mode=double
	kindDecimalString   // string: numeric or money under decimal.handling.mode=string
	kindDate            // int, io.debezium.time.Date: days since the epoch
	kindTime            // int, io.debezium.time.Time: ms past midnight
	kindMicroTime       // long, io.debezium.time.MicroTime: µs past midnight
	kindTimestamp       // long, io.debezium.time.Timestamp: ms since the epoch
	kindMicroTimestamp  // long, io.debezium.time.MicroTimestamp: µs since the epoch
	kindZonedTime       // string, io.debezium.time.ZonedTime
	kindZonedTimestamp  // string, io.debezium.time.ZonedTimestamp
	kindMicroDuration   // long, io.debezium.time.MicroDuration: µs
	kindUUID            // string, io.debezium.data.Uuid
	kindJSON            // string, io.debezium.data.Json
	kindXML             // string, io.debezium.data.Xml
	kindLtree           // string, io.debezium.data.Ltree
	kindEnum            // string, io.debezium.data.Enum with the allowed labels
	kindBits            // bytes, io.debezium.data.Bits: a bit string of more than one bit
	kindTsvector        // string, io.debezium.data.Tsvector
	kindPoint           // record io.debezium.data.geometry.Point
	kindGeometry        // record io.debezium.data.geometry.Geometry: box, lseg, path, polygon
	kindCircle          // record io.debezium.data.geometry.Circle
	kindLine            // record io.debezium.data.geometry.Line
	kindArray           // array of ["null", element]
)

// Debezium's semantic type names (the connect.name schema property).
const (
	connectDecimal        = "org.apache.kafka.connect.data.Decimal"
	connectVariableScale  = "io.debezium.data.VariableScaleDecimal"
	connectDate           = "io.debezium.time.Date"
	connectTime           = "io.debezium.time.Time"
	connectMicroTime      = "io.debezium.time.MicroTime"
	connectTimestamp      = "io.debezium.time.Timestamp"
	connectMicroTimestamp = "io.debezium.time.MicroTimestamp"
	connectZonedTime      = "io.debezium.time.ZonedTime"
	connectZonedTimestamp = "io.debezium.time.ZonedTimestamp"
	connectMicroDuration  = "io.debezium.time.MicroDuration"
	connectUUID           = "io.debezium.data.Uuid"
	connectJSON           = "io.debezium.data.Json"
	connectXML            = "io.debezium.data.Xml"
	connectLtree          = "io.debezium.data.Ltree"
	connectEnum           = "io.debezium.data.Enum"
)

// moneyScale is the scale of money values: Debezium's money.fraction.digits
// default, and what PostgreSQL prints under lc_monetary=C, which capture sets.
const moneyScale = 2

// connectDecimalDefaultPrecision is the Avro precision Confluent's AvroData
// writes for a Connect Decimal without connect.decimal.precision (money).
const connectDecimalDefaultPrecision = 64

// columnType is a column's Avro representation.
type columnType struct {
	kind kind
	// scale is the scale of kindDecimal and kindDecimalString; -1 for a
	// kindDecimalString of a numeric without a declared scale.
	scale int
	// prec is kindDecimal's precision, 0 when the type declares none (money).
	prec int
	// width is kindZonedTimestamp's number of fractional-second digits, 0
	// for as many as the value needs.
	width int
	// plain is kindDecimalString's money: printed in plain notation always.
	plain bool
	// specialNull is kindDecimal's and kindVariableDecimal's: a NaN or
	// ±Infinity travels as null (SpecialDecimalNull).
	specialNull bool
	allowed     string      // kindEnum: the labels, comma-separated
	length      int         // kindBits: the declared number of bits
	elem        *columnType // kindArray
}

// columnTypeOf maps a PostgreSQL column to its Avro representation the way
// Debezium's PostgreSQL connector does with time.precision.mode=adaptive,
// interval.handling.mode=numeric, hstore.handling.mode=json and the given
// decimal.handling.mode. Types not listed travel as strings in PostgreSQL's
// text form. The table in the package documentation lists every mapping.
func columnTypeOf(c change.Column, cfg encoderConfig) columnType {
	if c.Elem != nil {
		elem := *c.Elem
		elem.TypeMod = c.TypeMod // the array's modifier is its elements'
		e := columnTypeOf(elem, cfg)
		return columnType{kind: kindArray, elem: &e}
	}
	t := columnTypeOfScalar(c, cfg.decimal)
	if t.kind == kindDecimal || t.kind == kindVariableDecimal {
		t.specialNull = cfg.special == SpecialDecimalNull
	}
	return t
}

// columnTypeOfScalar is columnTypeOf for a column that is not an array.
func columnTypeOfScalar(c change.Column, decimals DecimalMode) columnType {
	if c.EnumValues != nil {
		return columnType{kind: kindEnum, allowed: strings.Join(c.EnumValues, ",")}
	}
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
		prec, scale, ok := numericTypeMod(c.TypeMod)
		switch decimals {
		case DecimalDouble:
			return columnType{kind: kindDecimalDouble}
		case DecimalString:
			if !ok {
				scale = -1
			}
			return columnType{kind: kindDecimalString, scale: scale}
		}
		if !ok {
			return columnType{kind: kindVariableDecimal}
		}
		return columnType{kind: kindDecimal, prec: prec, scale: scale}
	case "money":
		switch decimals {
		case DecimalDouble:
			return columnType{kind: kindDecimalDouble}
		case DecimalString:
			return columnType{kind: kindDecimalString, scale: moneyScale, plain: true}
		}
		return columnType{kind: kindDecimal, scale: moneyScale}
	case "date":
		return columnType{kind: kindDate}
	case "time":
		if timePrecision(c.TypeMod) <= 3 {
			return columnType{kind: kindTime}
		}
		return columnType{kind: kindMicroTime}
	case "timetz":
		return columnType{kind: kindZonedTime}
	case "timestamp":
		if timePrecision(c.TypeMod) <= 3 {
			return columnType{kind: kindTimestamp}
		}
		return columnType{kind: kindMicroTimestamp}
	case "timestamptz":
		return columnType{kind: kindZonedTimestamp, width: timePrecision(c.TypeMod)}
	case "interval":
		return columnType{kind: kindMicroDuration}
	case "uuid":
		return columnType{kind: kindUUID}
	case "json", "jsonb", "hstore":
		return columnType{kind: kindJSON}
	case "xml":
		return columnType{kind: kindXML}
	case "ltree":
		return columnType{kind: kindLtree}
	case "bit", "varbit":
		return bitsType(c.Type, c.TypeMod)
	case "tsvector":
		return columnType{kind: kindTsvector}
	case "point":
		return columnType{kind: kindPoint}
	case "box", "lseg", "path", "polygon":
		return columnType{kind: kindGeometry}
	case "circle":
		return columnType{kind: kindCircle}
	case "line":
		return columnType{kind: kindLine}
	default:
		return columnType{kind: kindString}
	}
}

// numericTypeMod returns the precision and scale a numeric's type modifier
// declares; ok is false for a numeric without them.
func numericTypeMod(mod int32) (prec, scale int, ok bool) {
	if mod < 4 {
		return 0, 0, false
	}
	mod -= 4
	return int(mod>>16) & 0xFFFF, int(mod & 0xFFFF), true
}

// timePrecision returns the fractional-second digits of a time or timestamp
// type modifier: 6 when the type declares none, as PostgreSQL's JDBC driver
// (and so Debezium) reports it.
func timePrecision(mod int32) int {
	if mod < 0 {
		return 6
	}
	return int(mod)
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

// schema returns the Avro schema of t as Confluent's AvroData writes the
// Kafka Connect schema Debezium builds. defined tracks the named types
// already defined in the enclosing schema.
func (t columnType) schema(defined map[string]bool) any {
	semantic := func(avroType, connectName string) map[string]any {
		return map[string]any{"type": avroType, "connect.version": 1, "connect.name": connectName}
	}
	switch t.kind {
	case kindInt16:
		return map[string]any{"type": "int", "connect.type": "int16"}
	case kindInt:
		return "int"
	case kindLong:
		return "long"
	case kindFloat:
		return "float"
	case kindDouble, kindDecimalDouble:
		return "double"
	case kindBool:
		return "boolean"
	case kindBytes:
		return "bytes"
	case kindDecimal:
		params := map[string]string{"scale": strconv.Itoa(t.scale)}
		prec := connectDecimalDefaultPrecision
		if t.prec > 0 {
			prec = t.prec
			params["connect.decimal.precision"] = strconv.Itoa(t.prec)
		}
		return map[string]any{
			"type":               "bytes",
			"scale":              t.scale,
			"precision":          prec,
			"connect.version":    1,
			"connect.parameters": params,
			"connect.name":       connectDecimal,
			"logicalType":        "decimal",
		}
	case kindVariableDecimal:
		if defined[connectVariableScale] {
			return connectVariableScale
		}
		defined[connectVariableScale] = true
		return variableScaleDecimalSchema()
	case kindDate:
		return semantic("int", connectDate)
	case kindTime:
		return semantic("int", connectTime)
	case kindMicroTime:
		return semantic("long", connectMicroTime)
	case kindTimestamp:
		return semantic("long", connectTimestamp)
	case kindMicroTimestamp:
		return semantic("long", connectMicroTimestamp)
	case kindZonedTime:
		return semantic("string", connectZonedTime)
	case kindZonedTimestamp:
		return semantic("string", connectZonedTimestamp)
	case kindMicroDuration:
		return semantic("long", connectMicroDuration)
	case kindUUID:
		return semantic("string", connectUUID)
	case kindJSON:
		return semantic("string", connectJSON)
	case kindXML:
		return semantic("string", connectXML)
	case kindLtree:
		return semantic("string", connectLtree)
	case kindEnum:
		s := semantic("string", connectEnum)
		s["connect.parameters"] = map[string]string{"allowed": t.allowed}
		return s
	case kindBits:
		s := semantic("bytes", connectBits)
		s["connect.parameters"] = t.bitsParams()
		return s
	case kindTsvector:
		return semantic("string", connectTsvector)
	case kindPoint, kindGeometry, kindCircle, kindLine:
		return t.geometrySchema(defined)
	case kindArray:
		return map[string]any{"type": "array", "items": []any{"null", t.elem.schema(defined)}}
	default:
		return "string"
	}
}

// branch returns the name goavro knows t by as a member of a union.
func (t columnType) branch() string {
	switch t.kind {
	case kindInt16, kindInt, kindDate, kindTime:
		return "int"
	case kindLong, kindMicroTime, kindTimestamp, kindMicroTimestamp, kindMicroDuration:
		return "long"
	case kindFloat:
		return "float"
	case kindDouble, kindDecimalDouble:
		return "double"
	case kindBool:
		return "boolean"
	case kindBytes, kindBits:
		return "bytes"
	case kindPoint:
		return connectPoint
	case kindGeometry:
		return connectGeometry
	case kindCircle:
		return connectCircle
	case kindLine:
		return connectLine
	case kindDecimal:
		return "bytes.decimal"
	case kindVariableDecimal:
		return connectVariableScale
	case kindArray:
		return "array"
	default:
		return "string"
	}
}

// zonedTimestampLayouts print a ZonedTimestamp as Debezium does: ISO-8601 in
// UTC with exactly as many fractional digits as the column's precision
// (index 1..6), or with as many as the value needs (index 0).
var zonedTimestampLayouts = [...]string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.0Z07:00",
	"2006-01-02T15:04:05.00Z07:00",
	"2006-01-02T15:04:05.000Z07:00",
	"2006-01-02T15:04:05.0000Z07:00",
	"2006-01-02T15:04:05.00000Z07:00",
	"2006-01-02T15:04:05.000000Z07:00",
}

// errNoPreciseForm marks a NaN or infinite numeric under
// decimal.handling.mode=precise with SpecialDecimalReject, or in a NOT NULL
// column, which cannot travel as null.
var errNoPreciseForm = errors.New("a numeric NaN or ±Infinity has no precise decimal form; set decimal handling mode string (or double) to capture it")

// Debezium's values for PostgreSQL's infinite dates and timestamps
// (PostgresValueConverter). A date's are the epoch days of its
// POSITIVE_INFINITY_LOCAL_DATE (-5877611-06-21) and NEGATIVE_INFINITY_LOCAL_DATE
// (-5877611-06-22): PostgreSQL's own date infinities, INT_MAX and INT_MIN days
// after 2000-01-01, moved to the Unix epoch in 32-bit arithmetic (so that
// +infinity is the smaller). A timestamp's are pgjdbc's
// PGStatement.DATE_POSITIVE_INFINITY and DATE_NEGATIVE_INFINITY read as µs
// (POSITIVE_INFINITY_INSTANT), so ms for timestamp(0..3) divide by 1000. A
// timestamptz travels as the strings "infinity" and "-infinity".
const (
	infinityDays        int32 = -2147472692
	minusInfinityDays   int32 = -2147472691
	infinityMicros      int64 = 9223372036825200000
	minusInfinityMicros int64 = -9223372036832400000
)

// infinityAvro returns Debezium's value of inf for t's kind.
func (t columnType) infinityAvro(inf change.Infinity) (any, bool) {
	pos := inf > 0
	switch t.kind {
	case kindDate:
		return map[bool]int32{true: infinityDays, false: minusInfinityDays}[pos], true
	case kindMicroTimestamp:
		return map[bool]int64{true: infinityMicros, false: minusInfinityMicros}[pos], true
	case kindTimestamp:
		return map[bool]int64{true: infinityMicros / 1000, false: minusInfinityMicros / 1000}[pos], true
	case kindZonedTimestamp:
		return inf.String(), true
	}
	return nil, false
}

// infinityOf reports whether v, an Avro value of t's kind, is one of
// Debezium's infinities, and which.
func (t columnType) infinityOf(v any) (change.Infinity, bool) {
	for _, inf := range []change.Infinity{change.PositiveInfinity, change.NegativeInfinity} {
		if a, ok := t.infinityAvro(inf); ok && a == v {
			return inf, true
		}
	}
	return 0, false
}

// toAvro converts a Row value to goavro's native form for t. A nil result
// without error means the value travels as null: a numeric NaN or ±Infinity
// with specialNull.
func (t columnType) toAvro(v any) (any, error) {
	if inf, ok := v.(change.Infinity); ok {
		if a, ok := t.infinityAvro(inf); ok {
			return a, nil
		}
	}
	switch t.kind {
	case kindInt16, kindInt:
		if x, ok := v.(int32); ok {
			return x, nil
		}
	case kindDate:
		if x, ok := v.(time.Time); ok {
			return int32(x.UTC().Unix() / 86400), nil
		}
	case kindLong:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case kindMicroDuration:
		if x, ok := v.(change.MicroDuration); ok {
			return int64(x), nil
		}
	case kindTime:
		if x, ok := v.(time.Duration); ok {
			return int32(x / time.Millisecond), nil
		}
	case kindMicroTime:
		if x, ok := v.(time.Duration); ok {
			return int64(x / time.Microsecond), nil
		}
	case kindTimestamp:
		if x, ok := v.(time.Time); ok {
			return x.UnixMilli(), nil
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
	case kindBits:
		if x, ok := v.(change.Bits); ok {
			return []byte(x), nil
		}
	case kindPoint, kindGeometry, kindCircle, kindLine:
		if a, ok := t.geometryToAvro(v); ok {
			return a, nil
		}
	case kindDecimal, kindVariableDecimal:
		switch x := v.(type) {
		case *big.Rat:
			if t.kind == kindDecimal {
				return x, nil
			}
			unscaled, scale := unscale(x)
			return map[string]any{"scale": int32(scale), "value": twosComplement(unscaled)}, nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				if t.specialNull {
					return nil, nil // Debezium's null for a value it has no form for
				}
				return nil, errNoPreciseForm
			}
		}
	case kindDecimalDouble:
		switch x := v.(type) {
		case *big.Rat:
			f, _ := x.Float64()
			return f, nil
		case float64:
			return x, nil
		}
	case kindDecimalString:
		switch x := v.(type) {
		case *big.Rat:
			if t.plain {
				return x.FloatString(t.scale), nil
			}
			return javaDecimalString(x, t.scale), nil
		case float64:
			// Debezium's names of the special values
			switch {
			case math.IsNaN(x):
				return "NAN", nil
			case math.IsInf(x, 1):
				return "POSITIVE_INFINITY", nil
			case math.IsInf(x, -1):
				return "NEGATIVE_INFINITY", nil
			}
		}
	case kindZonedTimestamp:
		if x, ok := v.(time.Time); ok {
			w := t.width
			if w < 0 || w >= len(zonedTimestampLayouts) {
				w = 0
			}
			return x.UTC().Format(zonedTimestampLayouts[w]), nil
		}
	case kindString, kindUUID, kindJSON, kindXML, kindLtree, kindEnum, kindZonedTime, kindTsvector:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case kindArray:
		if x, ok := v.([]any); ok {
			return t.arrayToAvro(x)
		}
	}
	return nil, fmt.Errorf("value %v of type %T does not fit %s", v, v, t)
}

func (t columnType) arrayToAvro(x []any) (any, error) {
	out := make([]any, len(x))
	branch := t.elem.branch()
	for i, e := range x {
		if e == nil {
			continue
		}
		a, err := t.elem.toAvro(e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i+1, err)
		}
		if a != nil {
			out[i] = goavro.Union(branch, a)
		}
	}
	return out, nil
}

// decimalText prints x with scale digits after the point, or with as many as
// it needs when scale is negative.
func decimalText(x *big.Rat, scale int) string {
	if scale < 0 {
		_, scale = unscale(x)
	}
	return x.FloatString(scale)
}

// javaDecimalString prints x as Java's BigDecimal.toString prints a decimal
// of that scale (of the smallest scale that holds x when scale is negative),
// which is how Debezium writes numerics under decimal.handling.mode=string:
// plain ("-1234.50"), unless the adjusted exponent is below -6 ("1E-7",
// "1.23E-8", "0E-8").
func javaDecimalString(x *big.Rat, scale int) string {
	var unscaled *big.Int
	if scale < 0 {
		unscaled, scale = unscale(x)
	} else {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
		unscaled = new(big.Int).Quo(new(big.Int).Mul(x.Num(), p), x.Denom())
	}
	digits := new(big.Int).Abs(unscaled).String()
	adjusted := -scale + len(digits) - 1
	if adjusted >= -6 {
		return x.FloatString(scale)
	}
	s := digits[:1]
	if len(digits) > 1 {
		s += "." + digits[1:]
	}
	s += "E" + strconv.Itoa(adjusted)
	if unscaled.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// fallback is the value Debezium writes for a required column whose value
// the change did not carry: zero, the empty string, the epoch.
func (t columnType) fallback() any {
	switch t.kind {
	case kindInt16, kindInt, kindDate, kindTime:
		return int32(0)
	case kindLong, kindMicroTime, kindTimestamp, kindMicroTimestamp, kindMicroDuration:
		return int64(0)
	case kindFloat:
		return float32(0)
	case kindDouble, kindDecimalDouble:
		return float64(0)
	case kindBool:
		return false
	case kindBytes, kindBits:
		return []byte{}
	case kindPoint:
		return pointNative(change.Point{}) // Debezium's Point.createValue(schema, 0, 0)
	case kindDecimal:
		return new(big.Rat)
	case kindVariableDecimal:
		return map[string]any{"scale": int32(0), "value": []byte{0}}
	case kindDecimalString:
		if t.plain {
			return new(big.Rat).FloatString(t.scale)
		}
		return javaDecimalString(new(big.Rat), t.scale)
	case kindZonedTime:
		return "00:00:00Z"
	case kindZonedTimestamp:
		return time.Unix(0, 0).UTC().Format(zonedTimestampLayouts[0])
	case kindArray:
		return []any{}
	default:
		return ""
	}
}

// fromAvro converts goavro's native form for t back to a Row value.
func (t columnType) fromAvro(v any) (any, error) {
	if inf, ok := t.infinityOf(v); ok {
		return inf, nil
	}
	switch t.kind {
	case kindDate:
		if d, ok := v.(int32); ok {
			return time.Unix(int64(d)*86400, 0).UTC(), nil
		}
	case kindTime:
		if ms, ok := v.(int32); ok {
			return time.Duration(ms) * time.Millisecond, nil
		}
	case kindMicroTime:
		if us, ok := v.(int64); ok {
			return time.Duration(us) * time.Microsecond, nil
		}
	case kindTimestamp:
		if ms, ok := v.(int64); ok {
			return time.UnixMilli(ms).UTC(), nil
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
	case kindMicroDuration:
		if us, ok := v.(int64); ok {
			return change.MicroDuration(us), nil
		}
	case kindBits:
		if b, ok := v.([]byte); ok {
			return change.Bits(b), nil
		}
	case kindPoint, kindGeometry, kindCircle, kindLine:
		return t.geometryFromAvro(v)
	case kindVariableDecimal:
		if m, ok := v.(map[string]any); ok {
			scale, _ := m["scale"].(int32)
			b, _ := m["value"].([]byte)
			n := fromTwosComplement(b)
			return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)), nil
		}
	case kindArray:
		if x, ok := v.([]any); ok {
			out := make([]any, len(x))
			for i, e := range x {
				if e = unwrapUnion(e); e == nil {
					continue
				}
				r, err := t.elem.fromAvro(e)
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i+1, err)
				}
				out[i] = r
			}
			return out, nil
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("avro value %v of type %T does not fit %s", v, v, t)
}

func (t columnType) String() string {
	b, _ := json.Marshal(t.schema(map[string]bool{}))
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
