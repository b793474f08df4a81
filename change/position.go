package change

import (
	"cmp"
	"fmt"
)

// Position orders changes captured from one replication slot: by the commit
// LSN of the transaction a change belongs to, then by the change's index
// within that transaction (starting at 1). The zero Position is before every
// change.
type Position struct {
	CommitLSN LSN
	Index     uint32
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.CommitLSN, q.CommitLSN); c != 0 {
		return c
	}
	return cmp.Compare(p.Index, q.Index)
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String formats p as fixed-width hexadecimal "CCCCCCCCCCCCCCCC/IIIIIIII", so
// that positions compare as strings the way they compare as values. Sinks that
// can only compare strings (a Redis script, say) store this form.
func (p Position) String() string {
	return fmt.Sprintf("%016X/%08X", uint64(p.CommitLSN), p.Index)
}

// ParsePosition parses the form [Position.String] produces.
func ParsePosition(s string) (Position, error) {
	var lsn uint64
	var idx uint32
	if len(s) != 25 {
		return Position{}, fmt.Errorf("parse position %q: want 16 hex digits, '/', 8 hex digits", s)
	}
	if _, err := fmt.Sscanf(s, "%016X/%08X", &lsn, &idx); err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", s, err)
	}
	return Position{CommitLSN: LSN(lsn), Index: idx}, nil
}

// MarshalText implements encoding.TextMarshaler with [Position.String]'s form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	v, err := ParsePosition(string(b))
	*p = v
	return err
}
