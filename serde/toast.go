package serde

import (
	"errors"

	"github.com/cdcflow/cdcflow/change"
)

// unavailable returns how a change.Unavailable value of t travels: Debezium's
// placeholder in text and bytes columns. TOAST only ever holds back
// variable-length values; other types cannot be represented.
func (t columnType) unavailable() (any, error) {
	switch t.kind {
	case kindString, kindJSON, kindUUID:
		return change.UnavailablePlaceholder, nil
	case kindBytes:
		return []byte(change.UnavailablePlaceholder), nil
	}
	return nil, errors.New("the source did not send this unchanged TOASTed value and its type has no placeholder; set REPLICA IDENTITY FULL on the table")
}

// isUnavailable reports whether v, an Avro value of t, is the placeholder.
func (t columnType) isUnavailable(v any) bool {
	switch x := v.(type) {
	case string:
		return x == change.UnavailablePlaceholder && (t.kind == kindString || t.kind == kindJSON || t.kind == kindUUID)
	case []byte:
		return t.kind == kindBytes && string(x) == change.UnavailablePlaceholder
	}
	return false
}
