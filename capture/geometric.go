package capture

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/wkb"
)

// parseBits parses a bit string's text ("0101") in a column of type
// pgType (bit or varbit) and type modifier mod, as Debezium converts it: a
// bool when the column holds one bit (bit, bit(1), bit varying(1)), else
// change.Bits, little-endian, sized to the highest bit set.
func parseBits(pgType string, mod int32, s string) (any, error) {
	for _, r := range s {
		if r != '0' && r != '1' {
			return nil, fmt.Errorf("bit string %q holds a %q", s, r)
		}
	}
	length := int(mod)
	if mod < 0 && pgType == "bit" {
		length = 1
	}
	if length == 1 {
		return strings.Contains(s, "1"), nil
	}
	var b change.Bits
	for i := 0; i < len(s); i++ { // bit i is the i-th character from the end
		if s[len(s)-1-i] == '1' {
			for len(b) <= i/8 {
				b = append(b, 0)
			}
			b[i/8] |= 1 << (i % 8)
		}
	}
	if b == nil {
		b = change.Bits{}
	}
	return b, nil
}

// parseGeometric parses the text of a geometric type as PostgreSQL prints it
// (extra_float_digits=3: every digit) into the value Debezium's
// PostgresValueConverter makes of it: a point its coordinates, a box (its
// corners, "(x1,y1),(x2,y2)"), an lseg ("[(x1,y1),(x2,y2)]"), a path (open
// "[...]" or closed "(...)") and a polygon ("((x1,y1),...)") their
// well-known binary with the type in the extensions, a circle
// ("<(x,y),r>") its center and radius, a line ("{A,B,C}") its coefficients.
func parseGeometric(pgType, s string) (any, error) {
	nums, err := coordinates(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", pgType, s, err)
	}
	bad := func(want string) (any, error) {
		return nil, fmt.Errorf("%s %q holds %d numbers, want %s", pgType, s, len(nums), want)
	}
	switch pgType {
	case "point":
		if len(nums) != 2 {
			return bad("2")
		}
		return change.Point{X: nums[0], Y: nums[1]}, nil
	case "circle":
		if len(nums) != 3 {
			return bad("3")
		}
		return change.Circle{X: nums[0], Y: nums[1], Radius: nums[2]}, nil
	case "line":
		if len(nums) != 3 {
			return bad("3")
		}
		return change.Line{A: nums[0], B: nums[1], C: nums[2]}, nil
	case "box":
		if len(nums) != 4 {
			return bad("4")
		}
		x1, y1, x2, y2 := nums[0], nums[1], nums[2], nums[3]
		return geometry("box", wkb.Polygon([]float64{x1, y1, x1, y2, x2, y2, x2, y1, x1, y1})), nil
	case "lseg":
		if len(nums) != 4 {
			return bad("4")
		}
		return geometry("lseg", wkb.LineString(nums)), nil
	case "path":
		if len(nums) < 2 || len(nums)%2 != 0 {
			return bad("an even number")
		}
		g := geometry("path", wkb.LineString(nums))
		g.Extensions["closed"] = strconv.FormatBool(!strings.HasPrefix(strings.TrimSpace(s), "["))
		return g, nil
	case "polygon":
		if len(nums) < 2 || len(nums)%2 != 0 {
			return bad("an even number")
		}
		ring := nums
		if n := len(nums); nums[0] != nums[n-2] || nums[1] != nums[n-1] {
			ring = append(ring[:n:n], nums[0], nums[1]) // closed, as Debezium closes it
		}
		return geometry("polygon", wkb.Polygon(ring)), nil
	}
	return nil, fmt.Errorf("%s is not a geometric type", pgType)
}

func geometry(pgType string, wkb []byte) change.Geometry {
	return change.Geometry{WKB: wkb, Extensions: map[string]string{"type": pgType}}
}

// coordinates returns the numbers of a geometric value's text, in order,
// whatever brackets enclose them.
func coordinates(s string) ([]float64, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("()[]<>{}, ", r) })
	out := make([]float64, len(fields))
	for i, f := range fields {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out[i] = x
	}
	return out, nil
}
