package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestBadDecimalHandlingModeStopsBeforeConnecting(t *testing.T) {
	f := captureFlags{DecimalHandlingMode: "exact", PgDSN: "postgres://nowhere:1/x", Tables: []string{"public.orders"}}
	_, _, _, err := f.start(slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("mode exact accepted")
	}
	for _, want := range []string{`"exact"`, "precise, double, string", "--decimal-handling-mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Elasticsearch that does not answer stops run at once, with an error that
// names --es-url and never shows the URL's password, in the error or the log.
func TestElasticsearchUnreachableNamesTheFlag(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"nothing listening", "http://elastic:s3cret@127.0.0.1:1", []string{"Elasticsearch unreachable at http://elastic:xxxxx@127.0.0.1:1", "check --es-url and that Elasticsearch is running"}},
		{"not a URL", "127.0.0.1:9200?pw=s3cret", []string{"--es-url is not an http(s) URL", "http://127.0.0.1:9200"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd{ESURL: tc.url, SearchIndex: "order-summaries", EventsTopic: "events.Order"}
			err := r.validate()
			if err == nil {
				_, err = r.elasticsearch(t.Context(), log)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error()+logged.String(), "s3cret") {
				t.Errorf("the password shows: error %q, log %q", err, logged.String())
			}
		})
	}
}
