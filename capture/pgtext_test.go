package capture

import (
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pglogrepl"
)

func TestParseInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want change.MicroDuration
	}{
		{"00:00:00", 0},
		{"-00:00:01", -1_000_000},
		{"00:00:00.000001", 1},
		{"1 year 2 mons 3 days 04:05:06.5", 37_091_106_500_000},
		{"-1 years +2 mons -3 days -04:05:06.5", -26_571_906_500_000},
		{"1 mon", 2_629_800_000_000}, // 30.4375 days
		{"1 mon 00:00:00.000001", 2_629_800_000_001},
		{"3 years 00:00:12.345678", 94_672_812_345_678},
		{"7 days 00:00:01.1", 604_801_100_000},
		{"100:00:00", 360_000_000_000},
		{"1 day -00:00:01", 86_399_000_000},
		// Debezium computes in doubles and truncates: 262920100001 exactly,
		// 262920100000 as Debezium (and so cdcflow) writes it.
		{"3 days 01:02:00.100001", 262_920_100_000},
		// Beyond a long's range Java's cast saturates.
		{"178000000 years", math.MaxInt64},
		{"-178000000 years", math.MinInt64},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseInterval(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("parseInterval(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"1 fortnight", "3", "P1Y2M", "1 year 2", "12:3:04", "00:00:00.1234567"} {
		if got, err := parseInterval(bad); err == nil {
			t.Errorf("parseInterval(%q) = %d, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "intervalstyle=postgres") {
			t.Errorf("error %q does not say which setting capture relies on", err)
		}
	}
}

func TestParseTimeAndTimeTZ(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"00:00:00", 0},
		{"04:05:06.5", 4*time.Hour + 5*time.Minute + 6500*time.Millisecond},
		{"23:59:59.999999", 24*time.Hour - time.Microsecond},
		{"24:00:00", 24 * time.Hour},
	} {
		if got, err := parseTime(tc.in); err != nil || got != tc.want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"24:00:01", "4:5:6", "10:61:00", "10:00", "ab:cd:ef"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) succeeded", bad)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"10:15:30+00", "10:15:30Z"},
		{"10:15:30.5+02", "08:15:30.5Z"},
		{"10:15:30.123456-03:30", "13:45:30.123456Z"},
		{"01:00:00+05", "20:00:00Z"}, // the previous day in UTC
		{"23:30:00-01", "00:30:00Z"},
		{"12:00:00+05:30:15", "06:29:45Z"},
		{"24:00:00+00", "24:00:00Z"}, // Debezium's end-of-day boundary
	} {
		if got, err := parseTimeTZ(tc.in); err != nil || got != tc.want {
			t.Errorf("parseTimeTZ(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"10:15:30", "10:15:30+5", "10:15:30+05:3x"} {
		if _, err := parseTimeTZ(bad); err == nil {
			t.Errorf("parseTimeTZ(%q) succeeded", bad)
		}
	}
}

func TestParseMoneyAndNumeric(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *big.Rat
	}{
		{"$0.00", new(big.Rat)},
		{"$1,234.56", big.NewRat(123456, 100)},
		{"-$1,234.56", big.NewRat(-123456, 100)},
		{"($7.05)", big.NewRat(-705, 100)},
		{"$92,233,720,368,547,758.07", new(big.Rat).SetFrac(big.NewInt(math.MaxInt64), big.NewInt(100))},
	} {
		got, err := parseMoney(tc.in)
		if err != nil || got.Cmp(tc.want) != 0 {
			t.Errorf("parseMoney(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "$", "1.234,56 €", "EUR 12", "$1.2.3"} {
		if got, err := parseMoney(bad); err == nil {
			t.Errorf("parseMoney(%q) = %v, want an error", bad, got)
		} else if !strings.Contains(err.Error(), "lc_monetary=C") {
			t.Errorf("error %q does not name lc_monetary", err)
		}
	}
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"-12.50", big.NewRat(-25, 2)},
		{"0.000001", big.NewRat(1, 1_000_000)},
		{"123456789012345678901234567890", new(big.Rat).SetFrac(bigInt("123456789012345678901234567890"), big.NewInt(1))},
		{"Infinity", math.Inf(1)},
		{"-Infinity", math.Inf(-1)},
	} {
		got, err := parseNumeric(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseNumeric(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got, err := parseNumeric("NaN"); err != nil || !math.IsNaN(got.(float64)) {
		t.Errorf("parseNumeric(NaN) = %v, %v", got, err)
	}
}

func bigInt(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

func TestParseArray(t *testing.T) {
	text := func(s string) (any, error) { return s, nil }
	for _, tc := range []struct {
		in   string
		want []any
	}{
		{"{}", []any{}},
		{"{a}", []any{"a"}},
		{`{a,"b c",NULL,"NULL",null,""}`, []any{"a", "b c", nil, "NULL", nil, ""}},
		{`{"with \"quote\"","back\\slash","comma, inside","{braces}"}`, []any{`with "quote"`, `back\slash`, "comma, inside", "{braces}"}},
		{`{"  padded  "}`, []any{"  padded  "}},
		{"[0:2]={x,y,z}", []any{"x", "y", "z"}},
		{`{"line
break"}`, []any{"line\nbreak"}},
	} {
		got, err := parseArray(tc.in, ',', text)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArray(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	if got, err := parseArray("{(0,0),(1,1);(2,2),(3,3)}", ';', text); err != nil || !reflect.DeepEqual(got, []any{"(0,0),(1,1)", "(2,2),(3,3)"}) {
		t.Errorf("box array = %#v, %v", got, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"{{1,2},{3,4}}", "multi-dimensional"},
		{"[1:2][1:1]={{1},{2}}", "multi-dimensional"},
		{`{"open}`, "unterminated"},
		{"1,2", "braces"},
		{`{"a"b}`, "expected"},
	} {
		if _, err := parseArray(tc.in, ',', text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArray(%q) error = %v, want one saying %q", tc.in, err, tc.want)
		}
	}
}

func TestParseHstore(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, `{}`},
		{`"a"=>"1"`, `{"a":"1"}`},
		{`"a"=>"1", "b"=>NULL`, `{"a":"1","b":null}`},
		{`"quote \"q\""=>"back\\slash", "k"=>"NULL"`, `{"quote \"q\"":"back\\slash","k":"NULL"}`},
	} {
		if got, err := parseHstore(tc.in); err != nil || got != tc.want {
			t.Errorf("parseHstore(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`"a"`, `"a"=>`, `a=>b`, `"a"=>"1" "b"=>"2"`} {
		if got, err := parseHstore(bad); err == nil {
			t.Errorf("parseHstore(%q) = %s, want an error", bad, got)
		}
	}
}

// TestDecodeValues decodes pgoutput text the way capture receives it, column
// type by column type, into the Row values change.Row documents.
func TestDecodeValues(t *testing.T) {
	d := newDecoder()
	col := func(typ string, oid uint32, mod int32) change.Column {
		return change.Column{Name: "c", Type: typ, OID: oid, TypeMod: mod}
	}
	array := func(elem change.Column) change.Column {
		return change.Column{Name: "c", Type: "_" + elem.Type, TypeMod: elem.TypeMod, Elem: &elem}
	}
	mood := change.Column{Type: "mood", OID: 70000, TypeMod: -1, EnumValues: []string{"sad", "ok", "happy"}}
	for _, tc := range []struct {
		name string
		c    change.Column
		in   string
		want any
	}{
		{"int2", col("int2", 21, -1), "-32768", int32(-32768)},
		{"int4", col("int4", 23, -1), "2147483647", int32(2147483647)},
		{"int8", col("int8", 20, -1), "-9223372036854775808", int64(math.MinInt64)},
		{"oid", col("oid", 26, -1), "4294967295", int64(4294967295)},
		{"float4", col("float4", 700, -1), "1.5", float32(1.5)},
		{"float8 infinity", col("float8", 701, -1), "-Infinity", math.Inf(-1)},
		{"bool", col("bool", 16, -1), "t", true},
		{"numeric", col("numeric", 1700, (10<<16|2)+4), "-12.50", big.NewRat(-25, 2)},
		{"money", col("money", 790, -1), "-$1,234.56", big.NewRat(-123456, 100)},
		{"bytea", col("bytea", 17, -1), `\x00ff`, []byte{0, 0xff}},
		{"text", col("text", 25, -1), "héllo", "héllo"},
		{"bpchar", col("bpchar", 1042, 7), "ab   ", "ab   "},
		{"date", col("date", 1082, -1), "2026-11-21", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)},
		{"time", col("time", 1083, -1), "04:05:06.789", 4*time.Hour + 5*time.Minute + 6789*time.Millisecond},
		{"timetz", col("timetz", 1266, -1), "04:05:06+02", "02:05:06Z"},
		{"timestamp", col("timestamp", 1114, -1), "2026-11-21 10:30:00.123456", time.Date(2026, 11, 21, 10, 30, 0, 123456000, time.UTC)},
		{"timestamptz", col("timestamptz", 1184, -1), "2026-11-21 10:30:00.5+00", time.Date(2026, 11, 21, 10, 30, 0, 500000000, time.UTC)},
		{"date infinity", col("date", 1082, -1), "infinity", change.PositiveInfinity},
		{"timestamp -infinity", col("timestamp", 1114, -1), "-infinity", change.NegativeInfinity},
		{"timestamptz infinity", col("timestamptz", 1184, -1), "infinity", change.PositiveInfinity},
		{"date[] with infinities", array(col("date", 1082, -1)), "{-infinity,2026-11-21,infinity}", []any{change.NegativeInfinity, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), change.PositiveInfinity}},
		{"interval", col("interval", 1186, -1), "1 day 02:00:00", change.MicroDuration(26 * time.Hour / time.Microsecond)},
		{"uuid", col("uuid", 2950, -1), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"inet", col("inet", 869, -1), "192.168.0.1/24", "192.168.0.1/24"},
		{"enum", mood, "happy", "happy"},
		{"hstore", col("hstore", 99999, -1), `"a"=>"1"`, `{"a":"1"}`},
		{"int4[]", array(col("int4", 23, -1)), "{1,NULL,-3}", []any{int32(1), nil, int32(-3)}},
		{"text[]", array(col("text", 25, -1)), `{"a,b",NULL,"NULL"}`, []any{"a,b", nil, "NULL"}},
		{"numeric[]", array(col("numeric", 1700, -1)), "{1.5,-2,NaN}", []any{big.NewRat(3, 2), big.NewRat(-2, 1), math.NaN()}},
		{"timestamptz[]", array(col("timestamptz", 1184, -1)), `{"2026-11-21 10:30:00+00",NULL}`, []any{time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC), nil}},
		{"enum[]", array(mood), "{sad,NULL,happy}", []any{"sad", nil, "happy"}},
		{"interval[]", array(col("interval", 1186, -1)), `{"00:00:01","-1 days"}`, []any{change.MicroDuration(1_000_000), change.MicroDuration(-86_400_000_000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.value(tc.c, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) && !sameNaNs(got, tc.want) {
				t.Fatalf("value(%s, %q) = %#v, want %#v", tc.c.Type, tc.in, got, tc.want)
			}
		})
	}
}

// sameNaNs reports whether got and want are equal arrays where NaN equals NaN.
func sameNaNs(got, want any) bool {
	g, ok1 := got.([]any)
	w, ok2 := want.([]any)
	if !ok1 || !ok2 || len(g) != len(w) {
		return false
	}
	for i := range g {
		gf, ok1 := g[i].(float64)
		wf, ok2 := w[i].(float64)
		if ok1 && ok2 && math.IsNaN(gf) && math.IsNaN(wf) {
			continue
		}
		if !reflect.DeepEqual(g[i], w[i]) {
			return false
		}
	}
	return true
}

func TestDecodeErrorsNameColumnTypeAndFix(t *testing.T) {
	d := newDecoder()
	tbl := &change.Table{Schema: "public", Name: "t", Columns: []change.Column{
		{Name: "grid", Type: "_int4", TypeMod: -1, Elem: &change.Column{Type: "int4", OID: 23}},
	}}
	tuple := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
		{DataType: pglogrepl.TupleDataTypeText, Data: []byte("{{1,2},{3,4}}")},
	}}
	_, err := d.row(tbl, tuple)
	if err == nil {
		t.Fatal("a 2-D array decodes")
	}
	for _, want := range []string{"public.t", "column grid", "_int4", "one-dimensional"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
