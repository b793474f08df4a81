package app

import (
	"log/slog"
	"strings"
	"testing"
)

func TestBadDecimalModesStopBeforeConnecting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags CaptureFlags
		want  []string
	}{
		{"decimal handling mode", CaptureFlags{DecimalHandlingMode: "exact", SpecialDecimalMode: "null"},
			[]string{`"exact"`, "precise, double, string", "--decimal-handling-mode"}},
		{"special decimal mode", CaptureFlags{DecimalHandlingMode: "precise", SpecialDecimalMode: "drop"},
			[]string{`"drop"`, "null, reject", "--special-decimal-mode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.flags
			f.PgDSN, f.Tables = "postgres://nowhere:1/x", []string{"public.orders"}
			p, err := f.NewCapture(slog.New(slog.DiscardHandler))
			if err == nil {
				p.Close()
				t.Fatal("mode accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
