package serde

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/wkb"
)

// Type modifiers as PostgreSQL stores them (atttypmod).
func numericMod(prec, scale int32) int32 { return (prec<<16 | scale) + 4 }
func charMod(n int32) int32              { return n + 4 }

var moodLabels = []string{"sad", "ok", "happy"}

// typesTable has one column of every type capture maps, as capture describes
// them from the catalog (domains already resolved to their base types).
func typesTable() *change.Table {
	c := func(name, typ string, oid uint32, mod int32) change.Column {
		return change.Column{Name: name, Type: typ, OID: oid, TypeMod: mod, Nullable: true}
	}
	elem := func(typ string, oid uint32) *change.Column { return &change.Column{Type: typ, OID: oid, TypeMod: -1} }
	mood := &change.Column{Type: "mood", OID: 16500, TypeMod: -1, EnumValues: moodLabels}
	cols := []change.Column{
		{Name: "id", Type: "int8", OID: 20, TypeMod: -1, Key: true},
		{Name: "code", Type: "varchar", OID: 1043, TypeMod: charMod(10), Key: true},
		c("i2", "int2", 21, -1),
		{Name: "i4", Type: "int4", OID: 23, TypeMod: -1}, // NOT NULL
		c("i8", "int8", 20, -1),
		c("f4", "float4", 700, -1),
		c("f8", "float8", 701, -1),
		c("flag", "bool", 16, -1),
		{Name: "price", Type: "numeric", OID: 1700, TypeMod: numericMod(12, 2)}, // NOT NULL
		c("ratio", "numeric", 1700, -1),
		c("cash", "money", 790, -1),
		c("body", "text", 25, -1),
		c("letters", "bpchar", 1042, charMod(3)),
		c("ident", "name", 19, -1),
		c("blob", "bytea", 17, -1),
		c("day", "date", 1082, -1),
		c("clock", "time", 1083, -1),
		c("clock_ms", "time", 1083, 3),
		c("clock_tz", "timetz", 1266, -1),
		c("local_ts", "timestamp", 1114, -1),
		c("local_ts_ms", "timestamp", 1114, 3),
		{Name: "zoned_ts", Type: "timestamptz", OID: 1184, TypeMod: -1}, // NOT NULL
		c("zoned_ts_ms", "timestamptz", 1184, 3),
		c("span", "interval", 1186, -1),
		c("ref", "uuid", 2950, -1),
		c("doc", "json", 114, -1),
		c("docb", "jsonb", 3802, -1),
		c("tags", "hstore", 16400, -1),
		{Name: "feeling", Type: "mood", OID: 16500, TypeMod: -1, EnumValues: moodLabels, Nullable: true},
		c("addr", "inet", 869, -1),
		c("net", "cidr", 650, -1),
		c("mac", "macaddr", 829, -1),
		c("mac8", "macaddr8", 774, -1),
		c("spot", "point", 600, -1),
		{Name: "pin", Type: "point", OID: 600, TypeMod: -1}, // NOT NULL
		c("frame", "box", 603, -1),
		c("seg", "lseg", 601, -1),
		c("route", "path", 602, -1),
		c("area", "polygon", 604, -1),
		c("disc", "circle", 718, -1),
		c("axis", "line", 628, -1),
		c("flag1", "bit", 1560, 1),
		{Name: "bits", Type: "bit", OID: 1560, TypeMod: 10}, // NOT NULL
		c("vbits", "varbit", 1562, -1),
		c("search", "tsvector", 3614, -1),
		c("page", "xml", 142, -1),
		c("path", "ltree", 16600, -1),
		{Name: "i2s", Type: "_int2", OID: 1005, TypeMod: -1, Elem: elem("int2", 21), Nullable: true},
		{Name: "i4s", Type: "_int4", OID: 1007, TypeMod: -1, Elem: elem("int4", 23)}, // NOT NULL
		{Name: "i8s", Type: "_int8", OID: 1016, TypeMod: -1, Elem: elem("int8", 20), Nullable: true},
		{Name: "texts", Type: "_text", OID: 1009, TypeMod: -1, Elem: elem("text", 25), Nullable: true},
		{Name: "prices", Type: "_numeric", OID: 1231, TypeMod: numericMod(10, 2), Elem: elem("numeric", 1700), Nullable: true},
		{Name: "ratios", Type: "_numeric", OID: 1231, TypeMod: -1, Elem: elem("numeric", 1700), Nullable: true},
		{Name: "flags", Type: "_bool", OID: 1000, TypeMod: -1, Elem: elem("bool", 16), Nullable: true},
		{Name: "f8s", Type: "_float8", OID: 1022, TypeMod: -1, Elem: elem("float8", 701), Nullable: true},
		{Name: "days", Type: "_date", OID: 1182, TypeMod: -1, Elem: elem("date", 1082), Nullable: true},
		{Name: "stamps", Type: "_timestamptz", OID: 1185, TypeMod: -1, Elem: elem("timestamptz", 1184), Nullable: true},
		{Name: "refs", Type: "_uuid", OID: 2951, TypeMod: -1, Elem: elem("uuid", 2950), Nullable: true},
		{Name: "docs", Type: "_jsonb", OID: 3807, TypeMod: -1, Elem: elem("jsonb", 3802), Nullable: true},
		{Name: "feelings", Type: "_mood", OID: 16499, TypeMod: -1, Elem: mood, Nullable: true},
	}
	return &change.Table{Schema: "public", Name: "all_types", Columns: cols}
}

// typesRow is a row of typesTable with a value in every column, as capture
// decodes it.
func typesRow() change.Row {
	mustRat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			panic(s)
		}
		return r
	}
	return change.Row{
		"id": int64(1), "code": "A-1",
		"i2": int32(-32768), "i4": int32(2147483647), "i8": int64(-9223372036854775808),
		"f4": float32(1.5), "f8": -2.25, "flag": true,
		"price":   mustRat("-1234.50"),
		"ratio":   mustRat("3.14159265358979323846264338327950288"),
		"cash":    mustRat("-1234.56"),
		"body":    "héllo, wörld",
		"letters": "ab ", "ident": "pg_class",
		"blob":        []byte{0x00, 0xde, 0xad, 0xbe, 0xef},
		"day":         time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		"clock":       4*time.Hour + 5*time.Minute + 6*time.Second + 789012*time.Microsecond,
		"clock_ms":    23*time.Hour + 59*time.Minute + 59*time.Second + 999*time.Millisecond,
		"clock_tz":    "08:15:30.5Z",
		"local_ts":    time.Date(2026, 11, 21, 10, 30, 0, 123456000, time.UTC),
		"local_ts_ms": time.Date(2026, 11, 21, 10, 30, 0, 123000000, time.UTC),
		"zoned_ts":    time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC),
		"zoned_ts_ms": time.Date(2026, 11, 21, 10, 30, 0, 120000000, time.UTC),
		"span":        change.MicroDuration(37_091_106_500_000), // 1 year 2 mons 3 days 04:05:06.5
		"ref":         "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"doc":         `{"a": [1, 2]}`, "docb": `{"b": null}`,
		"tags":    `{"colour":"red","size":null}`,
		"feeling": "happy",
		"addr":    "192.168.0.1/24", "net": "10.0.0.0/8", "mac": "08:00:2b:01:02:03", "mac8": "08:00:2b:01:02:03:04:05",
		"spot": change.Point{X: 1.5, Y: -2}, "pin": change.Point{X: 0.1, Y: 1e10},
		"frame": change.Geometry{WKB: wkb.Polygon([]float64{2, 3, 2, 1, 0, 1, 0, 3, 2, 3}), Extensions: map[string]string{"type": "box"}},
		"seg":   change.Geometry{WKB: wkb.LineString([]float64{0, 0, 1, 2}), Extensions: map[string]string{"type": "lseg"}},
		"route": change.Geometry{WKB: wkb.LineString([]float64{0, 0, 1, 1, 2, 0}), Extensions: map[string]string{"type": "path", "closed": "false"}},
		"area":  change.Geometry{WKB: wkb.Polygon([]float64{0, 0, 0, 1, 1, 1, 0, 0}), Extensions: map[string]string{"type": "polygon"}},
		"disc":  change.Circle{X: 1, Y: 2, Radius: 3.5}, "axis": change.Line{A: -1, B: 0, C: 2},
		"flag1": true, "bits": change.Bits{0x05, 0x02}, "vbits": change.Bits{},
		"search": "'fat':2 'rat':3",
		"page":   "<a>1</a>", "path": "Top.Science.Astronomy",
		"i2s":      []any{int32(1), nil, int32(-3)},
		"i4s":      []any{},
		"i8s":      []any{int64(1) << 40},
		"texts":    []any{"a,b", nil, "NULL", `with "quotes"`},
		"prices":   []any{mustRat("1.50"), nil, mustRat("-0.01")},
		"ratios":   []any{mustRat("0.5"), mustRat("-12345678901234567890.1")},
		"flags":    []any{true, false, nil},
		"f8s":      []any{0.1, nil, -0.5},
		"days":     []any{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		"stamps":   []any{time.Date(2026, 11, 21, 10, 30, 0, 500000000, time.UTC)},
		"refs":     []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil},
		"docs":     []any{`{"x": 1}`, `[]`},
		"feelings": []any{"sad", nil, "ok"},
	}
}

func indentJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestTypesGolden checks the schemas of a table with every type and the
// Avro value of a change to it against golden files: testdata/types.*.avsc,
// testdata/types.envelope.json (the value in Avro's JSON encoding) and
// testdata/types.after.txt, which lists column by column the PostgreSQL type,
// the Avro JSON of the value and the value a consumer decodes, so that a
// reviewer can read each one.
func TestTypesGolden(t *testing.T) {
	tbl := typesTable()
	ts, err := NewTableSchemas("shop", tbl)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "types.key.avsc", indentJSON(t, ts.Key))
	golden(t, "types.envelope.avsc", indentJSON(t, ts.Envelope))

	body, ev := encodeDecode(t, ts, typesEvent())
	envelope := avroJSON(t, ts, body) // re-encoded: sorted keys, stable across runs
	golden(t, "types.envelope.json", asciiJSON(marshalJSON(t, envelope, "  ")))

	after := envelope["after"].(map[string]any)["shop.public.all_types.Value"].(map[string]any)
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "column\tPostgreSQL\tAvro (JSON encoding)\tconsumer's Row value (Go type)")
	for _, c := range tbl.Columns {
		a := marshalJSON(t, after[c.Name], "")
		v := ev.After[c.Name]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s (%T)\n", c.Name, pgTypeName(c), asciiJSON(a), showValue(v), v)
	}
	w.Flush()
	golden(t, "types.after.txt", strings.TrimRight(b.String(), "\n"))
}

// pgTypeName writes c's type as SQL would.
func pgTypeName(c change.Column) string {
	name := c.Type
	switch {
	case c.Elem != nil:
		e := *c.Elem
		e.TypeMod, e.Nullable = c.TypeMod, true
		name = pgTypeName(e) + "[]"
	case c.Type == "numeric" && c.TypeMod >= 4:
		name = fmt.Sprintf("numeric(%d,%d)", (c.TypeMod-4)>>16, (c.TypeMod-4)&0xFFFF)
	case (c.Type == "varchar" || c.Type == "bpchar") && c.TypeMod >= 4:
		name = fmt.Sprintf("%s(%d)", c.Type, c.TypeMod-4)
	case (c.Type == "bit" || c.Type == "varbit") && c.TypeMod >= 0:
		name = fmt.Sprintf("%s(%d)", c.Type, c.TypeMod)
	case strings.HasPrefix(c.Type, "time") && c.TypeMod >= 0:
		name = fmt.Sprintf("%s(%d)", c.Type, c.TypeMod)
	case c.EnumValues != nil:
		name = fmt.Sprintf("%s enum%q", c.Type, c.EnumValues)
	}
	if !c.Nullable {
		name += " NOT NULL"
	}
	return name
}

// marshalJSON writes v as JSON with sorted keys, '<' and '>' unescaped.
func marshalJSON(t *testing.T, v any, indent string) []byte {
	t.Helper()
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.SetIndent("", indent)
	if err := e.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// asciiJSON escapes every non-ASCII character of JSON text as \uXXXX, as
// Avro's JSON encoding writes bytes, so that no byte hides in a terminal.
func asciiJSON(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		if r > 0x7e {
			fmt.Fprintf(&out, "\\u%04X", r)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// showValue prints a Row value readably: decimals as decimals, times in
// RFC 3339, bytes in hex.
func showValue(v any) string {
	switch x := v.(type) {
	case *big.Rat:
		return decimalText(x, -1)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []byte:
		return fmt.Sprintf("%x", x)
	case change.Bits:
		return fmt.Sprintf("%x, bit(10) %s", []byte(x), x.Text(10))
	case change.Geometry:
		return fmt.Sprintf("wkb %x %v", x.WKB, x.Extensions)
	case string:
		return strconv.Quote(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = showValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case nil:
		return "nil"
	}
	return fmt.Sprint(v)
}

func typesEvent() *change.Event {
	return &change.Event{
		Op: change.OpCreate, After: typesRow(),
		Source: change.Source{Version: "0.1.0", Connector: "postgresql", Name: "shop", TsMs: 1795000000000,
			Snapshot: "false", DB: "cdcflow", Sequence: change.SequenceFor(0x2000, 0x2F00), TsUs: 1795000000000000,
			TsNs: 1795000000000000000, Schema: "public", Table: "all_types", TxID: 771, LSN: 0x2F00},
		Transaction: &change.Transaction{ID: "771:12032", TotalOrder: 1, DataCollectionOrder: 1, CommitLSN: 0x3000},
		TsMs:        1795000000123,
	}
}

// TestTypesRoundTrip encodes a row with every type through a registry and
// decodes it as a consumer does: the consumer gets the row capture produced.
func TestTypesRoundTrip(t *testing.T) {
	client := fakeRegistry(t)
	ctx := context.Background()
	enc, dec := NewEncoder(client, "shop"), NewDecoder(client)

	nulls := change.Row{}
	for _, c := range typesTable().Columns {
		nulls[c.Name] = nil
	}
	nulls["id"], nulls["code"], nulls["i4"], nulls["price"] = int64(2), "B", int32(0), big.NewRat(1, 100)
	nulls["zoned_ts"], nulls["i4s"] = time.Unix(0, 0).UTC(), []any{nil}
	nulls["pin"], nulls["bits"] = change.Point{}, change.Bits{}

	specials := copyRow(typesRow())
	specials["f4"], specials["f8"] = float32(math.Inf(-1)), math.NaN()
	specials["f8s"] = []any{math.Inf(1), math.NaN(), math.Copysign(0, -1)}
	specials["clock"], specials["clock_tz"] = 24*time.Hour, "24:00:00Z"
	specials["span"], specials["day"] = change.MicroDuration(math.MinInt64), time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)

	for name, row := range map[string]change.Row{"values": typesRow(), "nulls": nulls, "specials": specials} {
		t.Run(name, func(t *testing.T) {
			ev := typesEvent()
			ev.After = row
			e, err := enc.Encode(ctx, typesTable(), ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.DecodeEvent(ctx, e.Value)
			if err != nil {
				t.Fatal(err)
			}
			for col, want := range row {
				if !reflect.DeepEqual(got.After[col], want) && !sameFloats([]any{got.After[col]}, []any{want}) && !sameFloats(got.After[col], want) {
					t.Errorf("column %s: decoded %#v, captured %#v", col, got.After[col], want)
				}
			}
			if len(got.After) != len(row) {
				t.Errorf("decoded %d columns, captured %d", len(got.After), len(row))
			}
			key, err := dec.DecodeKey(ctx, e.Key)
			if err != nil || !reflect.DeepEqual(key, change.Row{"id": row["id"], "code": row["code"]}) {
				t.Fatalf("key = %v, %v", key, err)
			}
		})
	}
}

// sameFloats compares arrays holding float64 infinities, which DeepEqual
// compares fine, and NaNs, which it does not.
func sameFloats(a, b any) bool {
	x, ok1 := a.([]any)
	y, ok2 := b.([]any)
	if !ok1 || !ok2 || len(x) != len(y) {
		return false
	}
	for i := range x {
		f, ok1 := x[i].(float64)
		g, ok2 := y[i].(float64)
		if !(ok1 && ok2 && math.IsNaN(f) && math.IsNaN(g)) && !reflect.DeepEqual(x[i], y[i]) {
			return false
		}
	}
	return true
}

// TestDecimalHandlingModes checks decimal.handling.mode double and string:
// numeric and money columns become Avro double or string (the schema names
// no logical type, as Debezium's), and a consumer gets float64 or string.
func TestDecimalHandlingModes(t *testing.T) {
	row := typesRow()
	for _, tc := range []struct {
		mode       DecimalMode
		avroType   string
		price      any // -1234.50, numeric(12,2)
		ratio      any // numeric without scale
		cash       any // money
		prices     []any
		ratioNaN   any
		ratioMinus any
	}{
		{DecimalDouble, "double", -1234.5, 3.141592653589793, -1234.56, []any{1.5, nil, -0.01}, math.NaN(), math.Inf(-1)},
		{DecimalString, "string", "-1234.50", "3.14159265358979323846264338327950288", "-1234.56", []any{"1.50", nil, "-0.01"}, "NAN", "NEGATIVE_INFINITY"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			ts, err := NewTableSchemas("shop", typesTable(), DecimalHandling(tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			var env map[string]any
			if err := json.Unmarshal([]byte(ts.Envelope), &env); err != nil {
				t.Fatal(err)
			}
			value := recordIn(field(env, "before"))
			for _, col := range []string{"price", "ratio", "cash"} {
				typ, _ := nonNull(field(value, col))
				if typ != tc.avroType {
					t.Errorf("column %s has Avro type %v, want %q", col, typ, tc.avroType)
				}
			}
			r, err := newReader(ts.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			ev := typesEvent()
			ev.After = row
			body, err := ts.EncodeEnvelope(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.decodeEnvelope(body)
			if err != nil {
				t.Fatal(err)
			}
			for col, want := range map[string]any{"price": tc.price, "ratio": tc.ratio, "cash": tc.cash, "prices": tc.prices} {
				if !reflect.DeepEqual(got.After[col], want) {
					t.Errorf("column %s decodes to %#v, want %#v", col, got.After[col], want)
				}
			}
			// NaN and -Infinity, which have no precise form, travel too.
			ev.After = copyRow(row)
			ev.After["ratio"], ev.After["ratios"] = math.NaN(), []any{math.Inf(-1)}
			if body, err = ts.EncodeEnvelope(ev); err != nil {
				t.Fatal(err)
			}
			if got, err = r.decodeEnvelope(body); err != nil {
				t.Fatal(err)
			}
			if !sameFloats([]any{got.After["ratio"]}, []any{tc.ratioNaN}) || !reflect.DeepEqual(got.After["ratios"], []any{tc.ratioMinus}) {
				t.Errorf("NaN, -Infinity decode to %#v, %#v", got.After["ratio"], got.After["ratios"])
			}
		})
	}
}

func copyRow(r change.Row) change.Row {
	out := make(change.Row, len(r))
	for k, v := range r {
		out[k] = v
	}
	return out
}

// TestPreciseSpecialDecimals: with decimal.handling.mode=precise a NaN or
// infinite numeric has no Avro form. By default it travels as null, as
// Debezium's PostgreSQL connector publishes it, alone or in an array; in a
// NOT NULL column, and with SpecialDecimalReject everywhere, encoding fails
// with a ValueError naming the column, its type and the setting that
// captures it.
func TestPreciseSpecialDecimals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    SpecialDecimalMode
		col     string
		value   any
		want    any // the decoded value; nil with wantErr
		wantErr string
	}{
		{"NaN travels as null", SpecialDecimalNull, "ratio", math.NaN(), nil, ""},
		{"Infinity in an array element", SpecialDecimalNull, "ratios", []any{big.NewRat(1, 2), math.Inf(-1)}, []any{big.NewRat(1, 2), nil}, ""},
		{"NOT NULL column cannot be null", SpecialDecimalNull, "price", math.Inf(1), nil, "NOT NULL"},
		{"reject NaN", SpecialDecimalReject, "ratio", math.NaN(), nil, "decimal handling mode string"},
		{"reject in an array", SpecialDecimalReject, "ratios", []any{math.Inf(-1)}, nil, "decimal handling mode string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := NewTableSchemas("shop", typesTable(), SpecialDecimals(tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			ev := typesEvent()
			ev.After = copyRow(typesRow())
			ev.After[tc.col] = tc.value
			_, err = ts.EncodeEnvelope(ev)
			if tc.wantErr != "" {
				var ve *ValueError
				if !errors.As(err, &ve) || ve.Column != tc.col || !errors.Is(err, errNoPreciseForm) {
					t.Fatalf("%s = %v encodes: %v", tc.col, tc.value, err)
				}
				for _, want := range []string{`"` + tc.col + `"`, "numeric", tc.wantErr} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, got := encodeDecode(t, ts, ev)
			if !reflect.DeepEqual(got.After[tc.col], tc.want) {
				t.Errorf("%s decodes to %#v, want %#v", tc.col, got.After[tc.col], tc.want)
			}
		})
	}
	if _, err := ParseSpecialDecimalMode("drop"); err == nil {
		t.Error("ParseSpecialDecimalMode(drop) succeeded")
	}
	if _, err := NewTableSchemas("shop", typesTable(), SpecialDecimals(SpecialDecimalMode(9))); err == nil || !strings.Contains(err.Error(), "null, reject") {
		t.Errorf("mode 9: %v", err)
	}
}

// TestInfiniteDatesAndTimestamps: PostgreSQL's infinity and -infinity travel
// as Debezium's PostgresValueConverter sends them — a date as the epoch days
// of -5877611-06-21 and -5877611-06-22, a timestamp as pgjdbc's
// PGStatement.DATE_POSITIVE_INFINITY and DATE_NEGATIVE_INFINITY µs (ms under
// timestamp(3)), a timestamptz as the strings "infinity" and "-infinity" —
// and decode back into change.Infinity, in arrays too.
func TestInfiniteDatesAndTimestamps(t *testing.T) {
	ts, err := NewTableSchemas("shop", typesTable())
	if err != nil {
		t.Fatal(err)
	}
	pos, neg := change.PositiveInfinity, change.NegativeInfinity
	for _, tc := range []struct {
		col      string
		value    any
		wireJSON string // the Avro JSON of the value
	}{
		{"day", pos, `{"int":-2147472692}`},
		{"day", neg, `{"int":-2147472691}`},
		{"local_ts", pos, `{"long":9223372036825200000}`},
		{"local_ts", neg, `{"long":-9223372036832400000}`},
		{"local_ts_ms", pos, `{"long":9223372036825200}`},
		{"local_ts_ms", neg, `{"long":-9223372036832400}`},
		{"zoned_ts", pos, `"infinity"`}, // NOT NULL: no union
		{"zoned_ts_ms", neg, `{"string":"-infinity"}`},
		{"days", []any{pos, nil, neg}, `{"array":[{"int":-2147472692},null,{"int":-2147472691}]}`},
		{"stamps", []any{neg}, `{"array":[{"string":"-infinity"}]}`},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.col, tc.value), func(t *testing.T) {
			ev := typesEvent()
			ev.After = copyRow(typesRow())
			ev.After[tc.col] = tc.value
			body, got := encodeDecode(t, ts, ev)
			after := avroJSON(t, ts, body)["after"].(map[string]any)["shop.public.all_types.Value"].(map[string]any)
			if wire := string(marshalJSON(t, after[tc.col], "")); wire != tc.wireJSON {
				t.Errorf("travels as %s, Debezium sends %s", wire, tc.wireJSON)
			}
			if !reflect.DeepEqual(got.After[tc.col], tc.value) {
				t.Errorf("decodes to %#v, want %#v", got.After[tc.col], tc.value)
			}
		})
	}
}

// TestJavaDecimalString: under decimal.handling.mode=string numerics print as
// Java's BigDecimal.toString prints them, as Debezium writes them.
func TestJavaDecimalString(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  string
	}{
		{"-1234.5", 2, "-1234.50"},
		{"0", 0, "0"},
		{"0", 6, "0.000000"},
		{"0", 8, "0E-8"},
		{"0.000001", -1, "0.000001"},
		{"0.0000001", -1, "1E-7"},
		{"-0.000000123", -1, "-1.23E-7"},
		{"0.00000123", 10, "0.0000012300"},
		{"0.00000001", 8, "1E-8"},
		{"123456789012345678901234567890", -1, "123456789012345678901234567890"},
	} {
		x, _ := new(big.Rat).SetString(tc.in)
		if got := javaDecimalString(x, tc.scale); got != tc.want {
			t.Errorf("javaDecimalString(%s, %d) = %s, want %s", tc.in, tc.scale, got, tc.want)
		}
	}
}

func TestBadDecimalModeFailsEveryEncode(t *testing.T) {
	if _, err := NewTableSchemas("shop", typesTable(), DecimalHandling(DecimalMode(7))); err == nil {
		t.Fatal("mode 7 accepted")
	}
	enc := NewEncoder(nil, "shop", DecimalHandling(DecimalMode(7)))
	if _, err := enc.Encode(context.Background(), typesTable(), typesEvent()); err == nil ||
		!strings.Contains(err.Error(), "precise, double, string") {
		t.Fatalf("Encode with mode 7: %v", err)
	}
	for _, s := range []string{"precise", "double", "string"} {
		var m DecimalMode
		if err := m.UnmarshalText([]byte(s)); err != nil || m.String() != s {
			t.Errorf("UnmarshalText(%s) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseDecimalMode("exact"); err == nil {
		t.Error("ParseDecimalMode(exact) succeeded")
	}
}

// TestTypesKeyOnlyBeforeImage: a delete under REPLICA IDENTITY DEFAULT
// carries the key only; required columns of every kind get Debezium's
// fallback values.
func TestTypesKeyOnlyBeforeImage(t *testing.T) {
	ts, err := NewTableSchemas("shop", typesTable())
	if err != nil {
		t.Fatal(err)
	}
	_, ev := encodeDecode(t, ts, &change.Event{Op: change.OpDelete, Before: change.Row{"id": int64(9), "code": "Z"},
		Source: change.Source{Snapshot: "false"}})
	if ev.Before["i4"] != int32(0) || ev.Before["price"].(*big.Rat).Sign() != 0 ||
		!ev.Before["zoned_ts"].(time.Time).Equal(time.Unix(0, 0)) || !reflect.DeepEqual(ev.Before["i4s"], []any{}) ||
		ev.Before["feeling"] != nil {
		t.Fatalf("before = %v", ev.Before)
	}
}

// TestUnavailableArrays: an unchanged TOASTed array travels as Debezium's
// placeholder for its element type and decodes back to change.Unavailable.
func TestUnavailableArrays(t *testing.T) {
	ts, err := NewTableSchemas("shop", typesTable())
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(ts.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	ev := typesEvent()
	ev.After = copyRow(typesRow())
	for _, col := range []string{"texts", "i4s", "i8s", "days", "docs", "feelings", "body", "page"} {
		ev.After[col] = change.Unavailable{}
	}
	body, err := ts.EncodeEnvelope(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.decodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"texts", "i4s", "i8s", "days", "docs", "feelings", "body", "page"} {
		if got.After[col] != (change.Unavailable{}) {
			t.Errorf("%s decodes to %#v", col, got.After[col])
		}
	}
	ev.After["flags"] = change.Unavailable{}
	if _, err := ts.EncodeEnvelope(ev); err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
		t.Errorf("an unavailable bool[] encodes: %v", err)
	}
}
