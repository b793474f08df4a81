package change

import (
	"cmp"
	"fmt"
)

// Position orders changes captured from one replication slot: by the commit
// LSN of the transaction a change belongs to, then by the change's index
// within that transaction (starting at 1). The zero Position is before every
// change.
//
// Changes read from topics that other Debezium connectors wrote carry
// positions made from their source coordinates instead (MySQL's binlog file
// and position, MongoDB's oplog timestamp, the LSNs of Debezium's own
// PostgreSQL connector): see [DebeziumPosition] for how they fill the three
// fields and what order they give.
type Position struct {
	CommitLSN LSN
	Index     uint32
	// Sub orders changes that CommitLSN and Index leave equal. cdcflow's
	// capture leaves it 0, and then the position's text form is the one it
	// always was; only positions of other Debezium connectors' changes use
	// it (Debezium's PostgreSQL connector: the change's own LSN).
	Sub uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.CommitLSN, q.CommitLSN); c != 0 {
		return c
	}
	if c := cmp.Compare(p.Index, q.Index); c != 0 {
		return c
	}
	return cmp.Compare(p.Sub, q.Sub)
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String formats p as fixed-width hexadecimal "CCCCCCCCCCCCCCCC/IIIIIIII",
// followed by "/SSSSSSSSSSSSSSSS" when Sub is not 0, so that positions
// compare as strings the way they compare as values: a position without Sub
// is a prefix of, and so sorts before, the same position with one. Sinks
// that can only compare strings (a Redis script, say) store this form.
func (p Position) String() string {
	if p.Sub != 0 {
		return fmt.Sprintf("%016X/%08X/%016X", uint64(p.CommitLSN), p.Index, p.Sub)
	}
	return fmt.Sprintf("%016X/%08X", uint64(p.CommitLSN), p.Index)
}

// ParsePosition parses the forms [Position.String] produces.
func ParsePosition(s string) (Position, error) {
	var lsn, sub uint64
	var idx uint32
	switch len(s) {
	case 25:
		if _, err := fmt.Sscanf(s, "%016X/%08X", &lsn, &idx); err != nil {
			return Position{}, fmt.Errorf("parse position %q: %w", s, err)
		}
	case 42:
		if _, err := fmt.Sscanf(s, "%016X/%08X/%016X", &lsn, &idx, &sub); err != nil {
			return Position{}, fmt.Errorf("parse position %q: %w", s, err)
		}
		if sub == 0 {
			return Position{}, fmt.Errorf("parse position %q: a zero third part is written without it", s)
		}
	default:
		return Position{}, fmt.Errorf("parse position %q: want 16 hex digits, '/', 8 hex digits, and optionally '/' and 16 hex digits", s)
	}
	return Position{CommitLSN: LSN(lsn), Index: idx, Sub: sub}, nil
}

// MarshalText implements encoding.TextMarshaler with [Position.String]'s form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	v, err := ParsePosition(string(b))
	*p = v
	return err
}
