package capture

import (
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// TestColumnDefault reads DEFAULT expressions as pg_get_expr prints them
// into the values Debezium's PostgresDefaultValueConverter gives them:
// literals of the types it reads, its placeholder for a function, nothing for
// NULL, for what it cannot parse and for the types it does not read.
func TestColumnDefault(t *testing.T) {
	col := func(typ string, oid uint32, mod int32) change.Column {
		return change.Column{Name: "c", Type: typ, OID: oid, TypeMod: mod}
	}
	for _, tc := range []struct {
		name string
		col  change.Column
		expr string
		want any
	}{
		{"text literal", col("text", 25, -1), "'new'::text", "new"},
		{"varchar literal", col("varchar", 1043, 14), "'EUR'::character varying", "EUR"},
		{"doubled quote", col("text", 25, -1), "'it''s'::text", "it's"},
		{"integer", col("int4", 23, -1), "42", int32(42)},
		{"negative integer", col("int8", 20, -1), "'-9223372036854775808'::bigint", int64(-9223372036854775808)},
		{"smallint", col("int2", 21, -1), "3", int32(3)},
		{"serial", col("int4", 23, -1), "nextval('accounts_id_seq'::regclass)", int32(0)},
		{"numeric", col("numeric", 1700, (10<<16|2)+4), "12.5", big.NewRat(25, 2)},
		{"double", col("float8", 701, -1), "1.5", 1.5},
		{"boolean", col("bool", 16, -1), "true", true},
		{"boolean from a function", col("bool", 16, -1), "is_enabled()", false},
		{"uuid function", col("uuid", 2950, -1), "gen_random_uuid()", "00000000-0000-0000-0000-000000000000"},
		{"jsonb", col("jsonb", 3802, -1), `'{"a": 1}'::jsonb`, `{"a": 1}`},
		{"date", col("date", 1082, -1), "'2020-01-01'::date", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"infinite date", col("date", 1082, -1), "'infinity'::date", change.PositiveInfinity},
		{"now()", col("timestamptz", 1184, -1), "now()", time.Unix(0, 0).UTC()},
		{"now() plus a day", col("timestamp", 1114, -1), "(now() + '1 day'::interval)", time.Unix(0, 0).UTC()},
		{"timestamptz literal", col("timestamptz", 1184, -1), "'2026-11-21 10:30:00+00'::timestamp with time zone", time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)},
		{"time", col("time", 1083, -1), "'08:00:00'::time without time zone", 8 * time.Hour},
		{"interval", col("interval", 1186, -1), "'1 day'::interval", change.MicroDuration(86_400_000_000)},
		{"interval function", col("interval", 1186, -1), "make_interval(days => 1)", nil},
		{"NULL", col("int4", 23, -1), "NULL::integer", nil},
		{"CURRENT_TIMESTAMP does not parse", col("timestamptz", 1184, -1), "CURRENT_TIMESTAMP", nil},
		{"money is not read", col("money", 790, -1), "'$1.00'::money", nil},
		{"enum is not read", change.Column{Name: "c", Type: "mood", OID: 16500, EnumValues: []string{"ok"}}, "'ok'::mood", nil},
		{"array is not read", change.Column{Name: "c", Type: "_int4", OID: 1007, Elem: &change.Column{Type: "int4", OID: 23}}, "'{}'::integer[]", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := columnDefault(newDecoder(), tc.col, tc.expr)
			if r, ok := tc.want.(*big.Rat); ok {
				if g, ok := got.(*big.Rat); !ok || g.Cmp(r) != 0 {
					t.Errorf("default of %s = %#v, want %v", tc.expr, got, r)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("default of %s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}
