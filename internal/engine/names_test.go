package engine

import (
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

func TestRowNames(t *testing.T) {
	for _, tc := range []struct {
		name            string
		key             change.Row
		child, identity string
	}{
		{"one column", change.Row{"id": int64(7)}, "id=7", "t|id=7"},
		{"columns in name order", change.Row{"order_id": int64(7), "line": int32(2)}, "line=2,order_id=7", "t|line=2|order_id=7"},
		{"a text column", change.Row{"code": "a b"}, "code=a b", "t|code=a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChildKey(tc.key); got != tc.child {
				t.Errorf("ChildKey = %q, want %q", got, tc.child)
			}
			if got := RowIdentity("t", tc.key); got != tc.identity {
				t.Errorf("RowIdentity = %q, want %q", got, tc.identity)
			}
		})
	}
}
