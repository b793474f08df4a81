package capture

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/wkb"
)

// TestParseBits: a one-bit column is a bool; longer bit strings are
// little-endian bytes sized to the highest bit set, as Debezium's
// PostgresValueConverter.convertBits makes them.
func TestParseBits(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		mod  int32
		in   string
		want any
	}{
		{"bit", -1, "1", true}, // bit is bit(1)
		{"bit", 1, "0", false},
		{"varbit", 1, "1", true},
		{"bit", 10, "1000000101", change.Bits{0x05, 0x02}},
		{"bit", 8, "10000000", change.Bits{0x80}},
		{"bit", 12, "000000000001", change.Bits{0x01}},
		{"bit", 4, "0000", change.Bits{}},
		{"varbit", -1, "101", change.Bits{0x05}},
		{"varbit", 33, "1" + strings.Repeat("0", 32), change.Bits{0, 0, 0, 0, 0x01}},
	} {
		got, err := parseBits(tc.typ, tc.mod, tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseBits(%s(%d), %q) = %#v, %v; want %#v", tc.typ, tc.mod, tc.in, got, err, tc.want)
		}
		if b, ok := tc.want.(change.Bits); ok && tc.mod > 0 && b.Text(int(tc.mod)) != tc.in {
			t.Errorf("Bits(%x).Text(%d) = %s, want %s", []byte(b), tc.mod, b.Text(int(tc.mod)), tc.in)
		}
	}
	if _, err := parseBits("bit", 3, "10x"); err == nil {
		t.Error("10x parses as a bit string")
	}
}

// TestParseGeometric reads geometric values as PostgreSQL prints them.
func TestParseGeometric(t *testing.T) {
	geom := func(typ string, b []byte, ext ...string) change.Geometry {
		g := change.Geometry{WKB: b, Extensions: map[string]string{"type": typ}}
		for i := 0; i+1 < len(ext); i += 2 {
			g.Extensions[ext[i]] = ext[i+1]
		}
		return g
	}
	for _, tc := range []struct {
		typ, in string
		want    any
	}{
		{"point", "(1.5,-2)", change.Point{X: 1.5, Y: -2}},
		{"point", "(0.1,1e+10)", change.Point{X: 0.1, Y: 1e10}},
		{"box", "(2,3),(0,1)", geom("box", wkb.Polygon([]float64{2, 3, 2, 1, 0, 1, 0, 3, 2, 3}))},
		{"lseg", "[(0,0),(1,2)]", geom("lseg", wkb.LineString([]float64{0, 0, 1, 2}))},
		{"path", "[(0,0),(1,1),(2,0)]", geom("path", wkb.LineString([]float64{0, 0, 1, 1, 2, 0}), "closed", "false")},
		{"path", "((0,0),(1,1),(2,0))", geom("path", wkb.LineString([]float64{0, 0, 1, 1, 2, 0}), "closed", "true")},
		{"polygon", "((0,0),(0,1),(1,1))", geom("polygon", wkb.Polygon([]float64{0, 0, 0, 1, 1, 1, 0, 0}))},
		{"circle", "<(1,2),3.5>", change.Circle{X: 1, Y: 2, Radius: 3.5}},
		{"line", "{-1,0,2}", change.Line{A: -1, B: 0, C: 2}},
	} {
		got, err := parseGeometric(tc.typ, tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseGeometric(%s, %q) = %#v, %v; want %#v", tc.typ, tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ typ, in string }{{"point", "(1)"}, {"box", "(1,2),(3,x)"}, {"circle", "<(1,2)>"}} {
		if got, err := parseGeometric(tc.typ, tc.in); err == nil {
			t.Errorf("parseGeometric(%s, %q) = %v, want an error", tc.typ, tc.in, got)
		}
	}
}
