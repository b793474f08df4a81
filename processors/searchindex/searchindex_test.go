package searchindex_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/processors/searchindex"
)

// TestVersionOrder: increasing positions give increasing versions, up
// to the bounds, and beyond them Version fails instead of wrapping.
func TestVersionOrder(t *testing.T) {
	ordered := []change.Position{
		{},
		{CommitLSN: 1, Index: 0},
		{CommitLSN: 1 << 32, Index: 1},
		{CommitLSN: 0x16B374D848, Index: 0}, // a snapshot read
		{CommitLSN: 0x16B374D848, Index: 1},
		{CommitLSN: 0x16B374D848, Index: 2},
		{CommitLSN: 0x16B374D848, Index: searchindex.MaxIndex},
		{CommitLSN: 0x16B374D849, Index: 1},
		{CommitLSN: 0xFFFFFFFF<<8 | 0xFF, Index: 3},
		{CommitLSN: searchindex.MaxCommitLSN - 1, Index: searchindex.MaxIndex},
		{CommitLSN: searchindex.MaxCommitLSN, Index: 0},
		{CommitLSN: searchindex.MaxCommitLSN, Index: searchindex.MaxIndex},
	}
	var prev int64 = -1
	for _, pos := range ordered {
		v, err := searchindex.Version(pos)
		if err != nil {
			t.Fatalf("Version(%s): %v", pos, err)
		}
		if v <= prev {
			t.Fatalf("Version(%s) = %d, not above the previous position's %d", pos, v, prev)
		}
		prev = v
	}
	if prev != 1<<63-1 {
		t.Fatalf("the last position's version is %d, want the largest int64", prev)
	}
	// Debezium's PostgreSQL connector: the change's own LSN (Sub) is the
	// version, whatever the last commit (CommitLSN) says.
	a, errA := searchindex.Version(change.Position{CommitLSN: 0x316329640, Sub: 0x316329640})
	b, errB := searchindex.Version(change.Position{CommitLSN: 0x316329640, Sub: 0x3163296D8})
	if errA != nil || errB != nil || a != 0x316329640 || b <= a {
		t.Fatalf("versions of two changes of one Debezium PostgreSQL transaction: %d (%v), %d (%v)", a, errA, b, errB)
	}
	for _, tc := range []struct {
		name string
		pos  change.Position
		want string
	}{
		{"LSN beyond 47 bits", change.Position{CommitLSN: searchindex.MaxCommitLSN + 1, Index: 1}, "commit LSN 8000/0 is beyond 7FFF/FFFFFFFF"},
		{"largest LSN", change.Position{CommitLSN: 1<<64 - 1}, "is beyond"},
		{"index beyond 16 bits", change.Position{CommitLSN: 100, Index: searchindex.MaxIndex + 1}, "change 65536 of its transaction"},
		{"a MongoDB change", change.Position{CommitLSN: 0x6B02428C_00000001, Index: 1}, "is beyond"},
		{"a Debezium PostgreSQL LSN beyond 63 bits", change.Position{CommitLSN: 1, Sub: 1 << 63}, "is beyond 2^63"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := searchindex.Version(tc.pos)
			if !errors.Is(err, searchindex.ErrVersionRange) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Version(%s) = %d, %v; want ErrVersionRange saying %q", tc.pos, v, err, tc.want)
			}
		})
	}
}
