package capture

import (
	"strings"
	"testing"
)

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := Config{Tables: []string{"public.orders", "bad name", "public.order_*"}, Slot: "Slot-1", Publication: "ok", TopicPrefix: "9x",
		MaskColumns: []string{"public.users.email"}, ExcludeColumns: []string{"users.ssn"}}
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
