package verify

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCompareDocuments(t *testing.T) {
	doc := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name      string
		want, got map[string]json.RawMessage
		compared  int
		diffs     []Difference
	}{
		{"equal, whatever the spacing and field order",
			map[string]json.RawMessage{"1": doc(`{"a": 1, "b": "x"}`)}, map[string]json.RawMessage{"1": doc(`{"b":"x","a":1}`)}, 1, nil},
		{"a field differs",
			map[string]json.RawMessage{"1": doc(`{"a": 1, "b": "x"}`)}, map[string]json.RawMessage{"1": doc(`{"a": 1, "b": "y"}`)}, 1,
			[]Difference{{Key: "1", Field: "b", Source: `"x"`, Sink: `"y"`}}},
		{"a field only one side has",
			map[string]json.RawMessage{"1": doc(`{"a": 1}`)}, map[string]json.RawMessage{"1": doc(`{"a": 1, "c": null}`)}, 1,
			[]Difference{{Key: "1", Field: "c", Sink: "null"}}},
		{"numbers compared exactly",
			map[string]json.RawMessage{"1": doc(`{"n": 9007199254740993}`)}, map[string]json.RawMessage{"1": doc(`{"n": 9007199254740992}`)}, 1,
			[]Difference{{Key: "1", Field: "n", Source: "9007199254740993", Sink: "9007199254740992"}}},
		{"documents missing and extra, in key order",
			map[string]json.RawMessage{"2": doc(`{"a":2}`), "3": doc(`{"a":3}`)}, map[string]json.RawMessage{"1": doc(`{"a":1}`), "3": doc(`{"a":3}`)}, 3,
			[]Difference{{Key: "1", Sink: `{"a":1}`}, {Key: "2", Source: `{"a":2}`}}},
		{"not objects", map[string]json.RawMessage{"1": doc(`[1,2]`)}, map[string]json.RawMessage{"1": doc(`[2,1]`)}, 1,
			[]Difference{{Key: "1", Source: "[1,2]", Sink: "[2,1]"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compared, diffs := compareDocuments(tc.want, tc.got)
			if compared != tc.compared || !reflect.DeepEqual(diffs, tc.diffs) {
				t.Fatalf("compared %d, differences %+v; want %d, %+v", compared, diffs, tc.compared, tc.diffs)
			}
		})
	}
}
