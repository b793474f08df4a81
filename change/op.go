package change

import "fmt"

// Op is the kind of change, with Debezium's one-letter codes.
type Op byte

// The operations of a change envelope, as Debezium codes them in its op field.
const (
	OpCreate   Op = 'c' // a row was inserted
	OpUpdate   Op = 'u' // a row was updated
	OpDelete   Op = 'd' // a row was deleted
	OpRead     Op = 'r' // a row was read by a snapshot
	OpTruncate Op = 't' // a table was truncated
)

// String returns the one-letter code ("c", "u", "d", "r" or "t").
func (o Op) String() string { return string(rune(o)) }

// ParseOp parses a one-letter Debezium op code.
func ParseOp(s string) (Op, error) {
	if len(s) == 1 {
		switch o := Op(s[0]); o {
		case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown op code %q: want one of c, u, d, r, t", s)
}
