package wkb

import (
	"encoding/hex"
	"testing"
)

// TestWellKnownBinary holds the encodings to the OGC layout, written out
// with Python's struct.pack('<...') for the same geometries: byte order 1,
// the type, the counts, then each coordinate as a little-endian double.
func TestWellKnownBinary(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		// POINT(1 2)
		{"point", Point(1, 2), "0101000000000000000000f03f0000000000000040"},
		// LINESTRING(0 0,1 1)
		{"line string", LineString([]float64{0, 0, 1, 1}), "01020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f"},
		// POLYGON((0 0,0 1,1 1,0 0))
		{"polygon", Polygon([]float64{0, 0, 0, 1, 1, 1, 0, 0}),
			"01030000000100000004000000000000000000000000000000000000000000000000000000000000000000f03f000000000000f03f000000000000f03f00000000000000000000000000000000"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
