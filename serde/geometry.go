package serde

import (
	"fmt"
	"math"
	"strconv"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/wkb"
	"github.com/linkedin/goavro/v2"
)

// Bit strings, geometric types and tsvector, as Debezium's
// PostgresValueConverter maps them: bit(1) and bit varying(1) to boolean,
// longer bit strings to io.debezium.data.Bits (bytes, with the declared
// length in its length parameter), point to io.debezium.data.geometry.Point,
// box, lseg, path and polygon to io.debezium.data.geometry.Geometry (version
// 2: well-known binary and extensions), circle and line to
// io.debezium.data.geometry.Circle and Line, tsvector to
// io.debezium.data.Tsvector (a string).

// Debezium's semantic type names of these types.
const (
	connectBits     = "io.debezium.data.Bits"
	connectTsvector = "io.debezium.data.Tsvector"
	connectPoint    = "io.debezium.data.geometry.Point"
	connectGeometry = "io.debezium.data.geometry.Geometry"
	connectCircle   = "io.debezium.data.geometry.Circle"
	connectLine     = "io.debezium.data.geometry.Line"
)

// geometryKinds are the kinds of Debezium's geometric records, by name.
var geometryKinds = map[string]kind{
	connectPoint: kindPoint, connectGeometry: kindGeometry, connectCircle: kindCircle, connectLine: kindLine,
}

// varbitLength is the length parameter Debezium writes for a bit varying
// without a declared length: Integer.MAX_VALUE.
const varbitLength = math.MaxInt32

// bitsType maps a bit or bit varying column of type modifier mod: its
// declared length, the length PostgreSQL gives a bare bit (1) or a bare
// bit varying (none, Debezium's 2^31 - 1).
func bitsType(pgType string, mod int32) columnType {
	length := int(mod)
	if mod < 0 {
		length = 1
		if pgType == "varbit" {
			length = varbitLength
		}
	}
	if length <= 1 {
		return columnType{kind: kindBool}
	}
	return columnType{kind: kindBits, length: length}
}

// alwaysOptional reports whether t's Connect schema is optional whatever the
// column's nullability: Debezium's Geometry, Circle and Line builders make
// theirs optional.
func (t columnType) alwaysOptional() bool {
	return t.kind == kindGeometry || t.kind == kindCircle || t.kind == kindLine
}

// record returns the Avro record of one of Debezium's geometric structs,
// named as Confluent's AvroData names a Connect struct, or only its name
// when the enclosing schema defined it already (Avro defines a name once).
func record(defined map[string]bool, fullName, doc string, version int, fields ...any) any {
	if defined[fullName] {
		return fullName
	}
	defined[fullName] = true
	ns, name := splitName(fullName)
	return map[string]any{
		"type": "record", "name": name, "namespace": ns, "fields": fields,
		"connect.doc": doc, "connect.version": version, "connect.name": fullName,
	}
}

func splitName(full string) (namespace, name string) {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '.' {
			return full[:i], full[i+1:]
		}
	}
	return "", full
}

func requiredField(name string, t any) map[string]any { return map[string]any{"name": name, "type": t} }

func optionalField(name string, t any) map[string]any {
	return map[string]any{"name": name, "type": []any{"null", t}, "default": nil}
}

// geometrySchema is the Avro schema of the geometric kinds.
func (t columnType) geometrySchema(defined map[string]bool) any {
	point := func() any {
		return record(defined, connectPoint, "Geometry (POINT)", 1,
			requiredField("x", "double"), requiredField("y", "double"),
			optionalField("wkb", "bytes"), optionalField("srid", "int"))
	}
	switch t.kind {
	case kindPoint:
		return point()
	case kindGeometry:
		return record(defined, connectGeometry, "Geometry", 2,
			requiredField("wkb", "bytes"), optionalField("srid", "int"),
			optionalField("extensions", map[string]any{"type": "map", "values": "string"}))
	case kindCircle:
		return record(defined, connectCircle, "Geometry (CIRCLE)", 1, requiredField("center", point()), requiredField("radius", "double"))
	default: // kindLine
		return record(defined, connectLine, "Geometry (LINE)", 1,
			requiredField("a", "double"), requiredField("b", "double"), requiredField("c", "double"))
	}
}

// geometryToAvro is toAvro for the geometric kinds.
func (t columnType) geometryToAvro(v any) (any, bool) {
	switch x := v.(type) {
	case change.Point:
		if t.kind == kindPoint {
			return pointNative(x), true
		}
	case change.Geometry:
		if t.kind == kindGeometry {
			g := map[string]any{"wkb": x.WKB, "srid": nil, "extensions": nil}
			if x.SRID != nil {
				g["srid"] = goavro.Union("int", *x.SRID)
			}
			if len(x.Extensions) > 0 {
				ext := make(map[string]any, len(x.Extensions))
				for k, v := range x.Extensions {
					ext[k] = v
				}
				g["extensions"] = goavro.Union("map", ext)
			}
			return g, true
		}
	case change.Circle:
		if t.kind == kindCircle {
			return map[string]any{"center": pointNative(change.Point{X: x.X, Y: x.Y}), "radius": x.Radius}, true
		}
	case change.Line:
		if t.kind == kindLine {
			return map[string]any{"a": x.A, "b": x.B, "c": x.C}, true
		}
	}
	return nil, false
}

// pointNative is a Point as Debezium's Point.createValue fills it: x, y
// and the point's well-known binary, no SRID.
func pointNative(p change.Point) map[string]any {
	return map[string]any{"x": p.X, "y": p.Y, "wkb": goavro.Union("bytes", wkb.Point(p.X, p.Y)), "srid": nil}
}

// geometryFromAvro is fromAvro for the geometric kinds.
func (t columnType) geometryFromAvro(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("avro value %v of type %T does not fit %s", v, v, t)
	}
	f := func(k string) float64 { x, _ := m[k].(float64); return x }
	switch t.kind {
	case kindPoint:
		return change.Point{X: f("x"), Y: f("y")}, nil
	case kindCircle:
		c, _ := m["center"].(map[string]any)
		x, _ := c["x"].(float64)
		y, _ := c["y"].(float64)
		return change.Circle{X: x, Y: y, Radius: f("radius")}, nil
	case kindLine:
		return change.Line{A: f("a"), B: f("b"), C: f("c")}, nil
	}
	g := change.Geometry{}
	g.WKB, _ = m["wkb"].([]byte)
	if srid, ok := unwrapUnion(m["srid"]).(int32); ok {
		g.SRID = &srid
	}
	if ext, ok := unwrapUnion(m["extensions"]).(map[string]any); ok {
		g.Extensions = make(map[string]string, len(ext))
		for k, v := range ext {
			g.Extensions[k], _ = v.(string)
		}
	}
	return g, nil
}

// bitsParams are the connect.parameters of a Bits schema.
func (t columnType) bitsParams() map[string]string {
	return map[string]string{"length": strconv.Itoa(t.length)}
}
