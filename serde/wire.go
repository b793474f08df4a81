package serde

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrNotWireFormat is returned for bytes that do not start with the
// Confluent wire-format header (magic byte 0 and a 4-byte schema id).
var ErrNotWireFormat = errors.New("not in Confluent wire format (magic byte 0 + 4-byte schema id)")

// wireHeaderLen is the length of the wire-format header: a zero byte and
// the schema id.
const wireHeaderLen = 5

// AppendWire appends the Confluent wire-format header for schema id to dst,
// then body.
func AppendWire(dst []byte, id int, body []byte) []byte {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	return append(dst, body...)
}

// SplitWire returns the schema id and Avro body of a wire-format message.
func SplitWire(b []byte) (id int, body []byte, err error) {
	if len(b) < wireHeaderLen || b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: got %d bytes", ErrNotWireFormat, len(b))
	}
	return int(binary.BigEndian.Uint32(b[1:wireHeaderLen])), b[wireHeaderLen:], nil
}
