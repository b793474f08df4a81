package change

import "strings"

// Bits is a bit string of more than one bit, bit(n > 1) or bit varying, as
// Debezium's io.debezium.data.Bits carries it: little-endian, the bit its
// text form writes last is the lowest bit of the first byte, in as many
// bytes as its highest set bit needs (none when every bit is 0). A bit(1)
// or bit varying(1) is a bool instead.
type Bits []byte

// Text returns the bit string of n bits Bits holds, as PostgreSQL writes it
// ("0101"): bit(n) names its n; a bit varying's length does not travel.
func (b Bits) Text(n int) string {
	var s strings.Builder
	for i := n - 1; i >= 0; i-- {
		if i/8 < len(b) && b[i/8]>>(i%8)&1 == 1 {
			s.WriteByte('1')
		} else {
			s.WriteByte('0')
		}
	}
	return s.String()
}

// Point is a point, as Debezium's io.debezium.data.geometry.Point carries
// it (with its OGC well-known binary).
type Point struct{ X, Y float64 }

// Geometry is a box, lseg, path or polygon as Debezium's
// io.debezium.data.geometry.Geometry (version 2) carries it: OGC well-known
// binary, little-endian, without SRID (a box and a polygon as a polygon
// whose ring is closed, an lseg and a path as a line string), and
// Extensions naming the PostgreSQL type ("type": "box") and whether a path
// is closed ("closed": "true" or "false"), which the binary cannot say.
type Geometry struct {
	WKB        []byte
	SRID       *int32 // nil for PostgreSQL's geometric types
	Extensions map[string]string
}

// Circle is a circle (io.debezium.data.geometry.Circle): its center and
// radius.
type Circle struct{ X, Y, Radius float64 }

// Line is an infinite line, Ax + By + C = 0
// (io.debezium.data.geometry.Line).
type Line struct{ A, B, C float64 }
