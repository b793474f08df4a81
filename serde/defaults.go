package serde

import (
	"math/big"
	"strings"
)

// defaultOf returns a column default v (a Row value, nil for none) in the two
// forms a schema and an encoder need: the Avro JSON of the field's default,
// which Confluent's AvroData also writes as the type's connect.default, and
// goavro's native form. ok is false when v is nil or t cannot carry a
// default: a VariableScaleDecimal is a record, which Debezium gives no default
// (KAFKA-12694), and arrays have none.
func (t columnType) defaultOf(v any) (json, native any, ok bool) {
	if v == nil || t.kind == kindVariableDecimal || t.kind == kindArray {
		return nil, nil, false
	}
	native, err := t.toAvro(v)
	if err != nil || native == nil {
		return nil, nil, false
	}
	switch x := native.(type) {
	case int32, int64, bool, string:
		return x, native, true
	case float32:
		return float64(x), native, true
	case float64:
		return x, native, true
	case []byte:
		return latin1(x), native, true
	case *big.Rat:
		b, ok := decimalBytes(x, t.scale)
		return latin1(b), native, ok
	}
	return nil, nil, false
}

// withConnectDefault adds connect.default to a type schema, as AvroData
// does for a Connect schema with a default value: a primitive becomes
// {"type": ..., "connect.default": ...}.
func withConnectDefault(s any, def any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return map[string]any{"type": s, "connect.default": def}
	}
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out["connect.default"] = def
	return out
}

// latin1 is b as Avro's JSON encoding writes bytes: each byte the code point
// of the same number.
func latin1(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		s.WriteRune(rune(c))
	}
	return s.String()
}

// decimalBytes is x as an Avro decimal of scale: the big-endian two's
// complement of x·10^scale; ok is false when that is not a whole number.
func decimalBytes(x *big.Rat, scale int) ([]byte, bool) {
	n := new(big.Rat).Mul(x, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !n.IsInt() {
		return nil, false
	}
	return twosComplement(n.Num()), true
}
