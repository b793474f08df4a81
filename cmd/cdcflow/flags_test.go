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
