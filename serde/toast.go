package serde

import (
	"errors"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// unavailable returns how a change.Unavailable value of t travels: Debezium's
// placeholder in text and bytes columns; in arrays of text-like types a
// one-element array of the placeholder, in int4, date and int8 arrays the
// placeholder's bytes as numbers, as Debezium writes them. TOAST only ever
// holds back variable-length values; other types cannot be represented.
func (t columnType) unavailable() (any, error) {
	switch t.kind {
	case kindString, kindJSON, kindUUID, kindXML, kindLtree, kindTsvector:
		return change.UnavailablePlaceholder, nil
	case kindBytes, kindBits:
		return []byte(change.UnavailablePlaceholder), nil
	case kindArray:
		if p := t.arrayPlaceholder(); p != nil {
			out := make([]any, len(p))
			for i, e := range p {
				out[i] = goavro.Union(t.elem.branch(), e)
			}
			return out, nil
		}
	}
	return nil, errors.New("the source did not send this unchanged TOASTed value and its type has no placeholder; set REPLICA IDENTITY FULL on the table")
}

// arrayPlaceholder returns the elements of Debezium's placeholder for an
// array of t's element type, nil if it has none.
func (t columnType) arrayPlaceholder() []any {
	var out []any
	switch t.elem.kind {
	case kindString, kindJSON, kindUUID, kindXML, kindLtree, kindEnum:
		out = append(out, change.UnavailablePlaceholder)
	case kindInt, kindDate:
		for _, b := range []byte(change.UnavailablePlaceholder) {
			out = append(out, int32(b))
		}
	case kindLong:
		for _, b := range []byte(change.UnavailablePlaceholder) {
			out = append(out, int64(b))
		}
	}
	return out
}

// isUnavailable reports whether v, an Avro value of t, is the placeholder.
func (t columnType) isUnavailable(v any) bool {
	switch x := v.(type) {
	case string:
		switch t.kind {
		case kindString, kindJSON, kindUUID, kindXML, kindLtree, kindTsvector:
			return x == change.UnavailablePlaceholder
		}
		return false
	case []byte:
		return (t.kind == kindBytes || t.kind == kindBits) && string(x) == change.UnavailablePlaceholder
	case []any:
		if t.kind != kindArray {
			return false
		}
		p := t.arrayPlaceholder()
		if p == nil || len(p) != len(x) {
			return false
		}
		for i := range p {
			if unwrapUnion(x[i]) != p[i] {
				return false
			}
		}
		return true
	}
	return false
}
