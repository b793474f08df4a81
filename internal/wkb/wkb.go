// Package wkb writes 2D geometries in the OGC well-known binary form,
// little-endian and without SRID, byte for byte as Debezium writes them
// (io.debezium.data.geometry.Point, io.debezium.spatial.WkbWriter).
package wkb

import (
	"encoding/binary"
	"math"
)

// Geometry types.
const (
	typePoint      = 1
	typeLineString = 2
	typePolygon    = 3
)

// Point returns the well-known binary of the point (x, y).
func Point(x, y float64) []byte {
	return appendXY(header(typePoint, 16), x, y)
}

// LineString returns the well-known binary of a line string through the
// points xy holds, x0, y0, x1, y1, ...
func LineString(xy []float64) []byte {
	b := binary.LittleEndian.AppendUint32(header(typeLineString, 4+8*len(xy)), uint32(len(xy)/2))
	return appendPoints(b, xy)
}

// Polygon returns the well-known binary of a polygon of one ring, the points
// ring holds, x0, y0, ...; the caller closes the ring (its last point is its
// first).
func Polygon(ring []float64) []byte {
	b := binary.LittleEndian.AppendUint32(header(typePolygon, 8+8*len(ring)), 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ring)/2))
	return appendPoints(b, ring)
}

func header(typ uint32, body int) []byte {
	b := make([]byte, 0, 5+body)
	b = append(b, 1) // little-endian
	return binary.LittleEndian.AppendUint32(b, typ)
}

func appendPoints(b []byte, xy []float64) []byte {
	for i := 0; i+1 < len(xy); i += 2 {
		b = appendXY(b, xy[i], xy[i+1])
	}
	return b
}

func appendXY(b []byte, x, y float64) []byte {
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
}
