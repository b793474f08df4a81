package views

import (
	"encoding/json"
	"fmt"
)

// JSON is the goka codec of a table that keeps one JSON document per key:
// Decode returns a V; Encode takes a V or a *V. Processors that write a read
// model can use it for their group table, so that writer and views agree on
// the encoding.
type JSON[V any] struct{}

// Encode marshals value, a V or a non-nil *V, to JSON.
func (JSON[V]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case V:
		return json.Marshal(v)
	case *V:
		if v != nil {
			return json.Marshal(*v)
		}
	}
	var zero V
	return nil, fmt.Errorf("views.JSON[%T] cannot encode a %T", zero, value)
}

// Decode unmarshals data into a V.
func (JSON[V]) Decode(data []byte) (any, error) {
	var v V
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode JSON into %T: %w", v, err)
	}
	return v, nil
}
