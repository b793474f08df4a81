package views_test

import (
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/views"
)

type summary struct {
	ID       int64  `json:"id"`
	Customer int64  `json:"customer_id"`
	Status   string `json:"status"`
	Total    string `json:"total"`
}

func TestJSONEncode(t *testing.T) {
	s := summary{ID: 7, Customer: 3, Status: "paid", Total: "12.50"}
	const want = `{"id":7,"customer_id":3,"status":"paid","total":"12.50"}`
	tests := []struct {
		name    string
		value   any
		want    string
		wantErr string
	}{
		{name: "value", value: s, want: want},
		{name: "pointer", value: &s, want: want},
		{name: "nil pointer", value: (*summary)(nil), wantErr: "views.JSON[views_test.summary] cannot encode a *views_test.summary"},
		{name: "other type", value: "paid", wantErr: "views.JSON[views_test.summary] cannot encode a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := views.JSON[summary]{}.Encode(tc.value)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Encode(%v) error = %v, want %q", tc.value, err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("Encode(%v) = %s, %v; want %s", tc.value, got, err, tc.want)
			}
		})
	}
}

func TestJSONDecode(t *testing.T) {
	got, err := views.JSON[summary]{}.Decode([]byte(`{"id":7,"customer_id":3,"status":"paid","total":"12.50","extra":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (summary{ID: 7, Customer: 3, Status: "paid", Total: "12.50"}); got != want {
		t.Errorf("Decode = %#v, want %#v", got, want)
	}

	_, err = views.JSON[summary]{}.Decode([]byte(`{"id":"seven"}`))
	if err == nil || !strings.HasPrefix(err.Error(), "decode JSON into views_test.summary: ") {
		t.Errorf("Decode of a string id: error = %v, want one naming the type", err)
	}
}
