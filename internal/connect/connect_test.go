package connect

import (
	"strings"
	"testing"
)

// Elasticsearch that does not answer fails at once, with an error that
// names the setting and never shows the URL's password.
func TestElasticsearchUnreachableNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"nothing listening", "http://elastic:s3cret@127.0.0.1:1", []string{"Elasticsearch unreachable at http://elastic:xxxxx@127.0.0.1:1", "check --es-url and that Elasticsearch is running"}},
		{"not a URL", "127.0.0.1:9200?pw=s3cret", []string{"--es-url is not an http(s) URL", "http://127.0.0.1:9200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Elasticsearch(t.Context(), "--es-url", tc.url, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the password shows: %q", err)
			}
		})
	}
}

// A Redis URL that does not parse names the setting, not the password.
func TestRedisBadURL(t *testing.T) {
	_, err := Redis(t.Context(), "--redis-addr", "redis://u:s3cret@host:notaport/0", Options{})
	if err == nil || !strings.Contains(err.Error(), "--redis-addr") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
}
