package capture

import (
	"slices"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := Config{Tables: []string{"public.orders", "bad name", "public.order_*"}, Slot: "Slot-1", Publication: "ok", TopicPrefix: "9x",
		MaskColumns: []string{"public.users.email"}, ExcludeColumns: []string{"users.ssn"}, IncrementalChunkRows: -1, SignalTable: "Signals"}
	cfg.setDefaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate passed")
	}
	for _, want := range []string{
		"no PostgreSQL DSN: set --pg-dsn",
		"no Kafka brokers: set --kafka-brokers",
		`"bad name" is not a plain name or pattern`,
		`"users.ssn" is not a schema.table.column name or pattern`,
		"--mask-columns needs a salt",
		`slot name "Slot-1" is invalid`,
		`topic prefix "9x" is invalid`,
		"incremental snapshot chunk rows (-1) must be at least 1",
		`signal table: table "Signals" is not a plain schema.table name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	good := Config{DSN: "postgres://localhost/db", Tables: []string{"orders"}, Brokers: []string{"localhost:9092"}}
	good.setDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("a good config fails: %v", err)
	}
}

// TestParseSkippedOperations reads Debezium's skipped.operations: the
// default skips truncates, none skips nothing, and only c, u, d, t exist.
func TestParseSkippedOperations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []change.Op
		err  string
	}{
		{"", []change.Op{change.OpTruncate}, ""},
		{"t", []change.Op{change.OpTruncate}, ""},
		{"none", []change.Op{}, ""},
		{" c, u ,c", []change.Op{change.OpCreate, change.OpUpdate}, ""},
		{"r", nil, `"r" is not one of c, u, d, t`},
		{"c,x", nil, `"x" is not one of c, u, d, t`},
	} {
		got, err := ParseSkippedOperations(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSkippedOperations(%q) = %v, %v; want an error saying %s", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("ParseSkippedOperations(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	cfg := Config{DSN: "postgres://localhost/db", Tables: []string{"orders"}, Brokers: []string{"localhost:9092"}, SkippedOperations: []change.Op{change.OpRead}}
	cfg.setDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `skipped operation "r"`) {
		t.Errorf("skipping reads validates: %v", err)
	}
}
