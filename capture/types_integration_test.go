package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/internal/wkb"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/linkedin/goavro/v2"
)

// TestCaptureEveryType captures a row with a column of every type capture
// maps through real PostgreSQL, Kafka and the schema registry, streamed from
// the WAL and read by the initial snapshot, and checks the consumer's decoded
// after image field by field, and for the types whose wire form matters to
// Debezium tools the raw Avro value as well.
func TestCaptureEveryType(t *testing.T) {
	f := newFixture(t)
	mood, price := f.name+"_mood", f.name+"_price"
	f.exec(fmt.Sprintf("CREATE TYPE %s AS ENUM ('sad', 'ok', 'happy')", mood))
	f.exec(fmt.Sprintf("CREATE DOMAIN %s AS numeric(10,2)", price))
	t.Cleanup(func() { // after capture stopped (registered later, runs earlier)
		testenv.DropSlot(context.Background(), f.db, f.name)
		f.db.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s; DROP TYPE IF EXISTS %s; DROP DOMAIN IF EXISTS %s", f.name, mood, price))
	})
	hstore := "tags hstore,"
	if _, err := f.db.Exec(context.Background(), "CREATE EXTENSION IF NOT EXISTS hstore"); err != nil {
		t.Logf("hstore not tested, the extension is not available: %v", err)
		hstore = ""
	}
	f.exec(fmt.Sprintf(`CREATE TABLE %s (
		id bigint PRIMARY KEY,
		i2 smallint, i4 integer NOT NULL, i8 bigint, f4 real, f8 double precision, flag boolean,
		price numeric(12,2) NOT NULL, ratio numeric, cash money, dom %s,
		body text, code varchar(10), letters char(3), ident name, blob bytea,
		day date, clock time, clock_ms time(3), clock_tz timetz,
		local_ts timestamp, local_ts_ms timestamp(3), zoned_ts timestamptz NOT NULL, zoned_ts_ms timestamptz(3),
		span interval, span2 interval,
		ref uuid, doc json, docb jsonb, %s feeling %s,
		addr inet, net cidr, mac macaddr, mac8 macaddr8, spot point, page xml,
		pin point NOT NULL, frame box, seg lseg, route path, loop path, area polygon, disc circle, axis line,
		b1 bit, b10 bit(10) NOT NULL, vb varbit, vb1 varbit(1), search tsvector, spots point[],
		i4s integer[], i8s bigint[] NOT NULL, texts text[], prices numeric(10,2)[], ratios numeric[],
		bools boolean[], days date[], stamps timestamptz[], refs uuid[], feelings %s[])`,
		f.name, price, hstore, mood, mood))
	insert := fmt.Sprintf(`INSERT INTO %s VALUES ($1,
		-32768, 2147483647, -9223372036854775808, 1.5, '-Infinity', true,
		-1234.5, 3.14159265358979323846264338327950288, -1234.56, 9.5,
		E'h\u00e9llo, "w\u00f6rld"\nline 2', 'A-1', 'ab', 'pg_class', '\x00deadbeef',
		'1969-12-31', '04:05:06.789012', '23:59:59.999', '10:15:30.5+02',
		'2026-11-21 10:30:00.123456', '2026-11-21 10:30:00.123', '2026-11-21 12:30:00+02', '2026-11-21 10:30:00.12+00',
		'1 year 2 mons 3 days 04:05:06.5', '3 days 01:02:00.100001',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', %s 'happy',
		'192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '(1.5,-2)', '<a>1</a>',
		'(0.1,1e10)', '((0,1),(2,3))', '[(0,0),(1,2)]', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '((0,0),(0,1),(1,1))',
		'<(1,2),3.5>', '{-1,0,2}', B'1', B'1000000101', B'101', B'0', 'a fat cat sat on a mat'::tsvector, '{"(1,2)",NULL}',
		'{1,NULL,-3}', '{}', '{"a,b",NULL,"NULL","with \"quotes\"","back\\slash"}', '{1.5,NULL,-0.01}',
		'{0.5,-12345678901234567890.1,NULL}', '{t,f,NULL}', '{2026-01-01,NULL}', '{"2026-11-21 10:30:00.5+00"}',
		'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{sad,NULL,ok}')`,
		f.name, map[bool]string{true: `'colour=>red, size=>NULL',`, false: ""}[hstore != ""])
	f.exec(insert, 3) // before capture starts: read by the initial snapshot
	f.start(capture.Config{})
	f.exec(insert, 1) // streamed from the WAL
	f.exec(fmt.Sprintf("INSERT INTO %s (id, i4, price, zoned_ts, i8s, pin, b10) VALUES (2, 0, 0, 'epoch', '{}', '(0,0)', B'0000000000')", f.name))

	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("bad decimal %s", s)
		}
		return r
	}
	want := change.Row{
		"id": int64(1), "i2": int32(-32768), "i4": int32(2147483647), "i8": int64(math.MinInt64),
		"f4": float32(1.5), "f8": math.Inf(-1), "flag": true,
		"price": rat("-1234.50"), "ratio": rat("3.14159265358979323846264338327950288"), "cash": rat("-1234.56"),
		"dom":  rat("9.50"),
		"body": "h\u00e9llo, \"w\u00f6rld\"\nline 2", "code": "A-1", "letters": "ab ", "ident": "pg_class",
		"blob":        []byte{0x00, 0xde, 0xad, 0xbe, 0xef},
		"day":         time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		"clock":       4*time.Hour + 5*time.Minute + 6*time.Second + 789012*time.Microsecond,
		"clock_ms":    24*time.Hour - time.Millisecond,
		"clock_tz":    "08:15:30.5Z",
		"local_ts":    time.Date(2026, 11, 21, 10, 30, 0, 123456000, time.UTC),
		"local_ts_ms": time.Date(2026, 11, 21, 10, 30, 0, 123000000, time.UTC),
		"zoned_ts":    time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC),
		"zoned_ts_ms": time.Date(2026, 11, 21, 10, 30, 0, 120000000, time.UTC),
		"span":        change.MicroDuration(37_091_106_500_000), // 14 months of 30.4375 days + 3 days 04:05:06.5
		"span2":       change.MicroDuration(262_920_100_000),    // Debezium's double arithmetic drops the last µs
		"ref":         "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"doc":         `{"a": [1, 2]}`, "docb": `{"b": null}`,
		"feeling": "happy",
		"addr":    "192.168.0.1/24", "net": "10.0.0.0/8", "mac": "08:00:2b:01:02:03", "mac8": "08:00:2b:01:02:03:04:05",
		"spot": change.Point{X: 1.5, Y: -2}, "page": "<a>1</a>",
		"pin":   change.Point{X: 0.1, Y: 1e10},
		"frame": change.Geometry{WKB: wkbPolygon(2, 3, 2, 1, 0, 1, 0, 3, 2, 3), Extensions: map[string]string{"type": "box"}},
		"seg":   change.Geometry{WKB: wkbLine(0, 0, 1, 2), Extensions: map[string]string{"type": "lseg"}},
		"route": change.Geometry{WKB: wkbLine(0, 0, 1, 1, 2, 0), Extensions: map[string]string{"type": "path", "closed": "false"}},
		"loop":  change.Geometry{WKB: wkbLine(0, 0, 1, 1, 2, 0), Extensions: map[string]string{"type": "path", "closed": "true"}},
		"area":  change.Geometry{WKB: wkbPolygon(0, 0, 0, 1, 1, 1, 0, 0), Extensions: map[string]string{"type": "polygon"}},
		"disc":  change.Circle{X: 1, Y: 2, Radius: 3.5}, "axis": change.Line{A: -1, B: 0, C: 2},
		"b1": true, "b10": change.Bits{0x05, 0x02}, "vb": change.Bits{0x05}, "vb1": false,
		"search":   "'a' 'cat' 'fat' 'mat' 'on' 'sat'",
		"spots":    []any{change.Point{X: 1, Y: 2}, nil},
		"i4s":      []any{int32(1), nil, int32(-3)},
		"i8s":      []any{},
		"texts":    []any{"a,b", nil, "NULL", `with "quotes"`, `back\slash`},
		"prices":   []any{rat("1.50"), nil, rat("-0.01")},
		"ratios":   []any{rat("0.5"), rat("-12345678901234567890.1"), nil},
		"bools":    []any{true, false, nil},
		"days":     []any{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		"stamps":   []any{time.Date(2026, 11, 21, 10, 30, 0, 500000000, time.UTC)},
		"refs":     []any{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", nil},
		"feelings": []any{"sad", nil, "ok"},
	}
	if hstore != "" {
		want["tags"] = `{"size":null,"colour":"red"}` // hstore's order: shorter keys first
	}
	nulls := change.Row{"id": int64(2), "i4": int32(0), "price": rat("0"), "zoned_ts": time.Unix(0, 0).UTC(), "i8s": []any{},
		"pin": change.Point{}, "b10": change.Bits{}}
	for col := range want {
		if _, ok := nulls[col]; !ok {
			nulls[col] = nil
		}
	}

	topic := serde.Topic(f.prefix, "public", f.name)
	recs := f.rawRecords(topic, 3)
	dec := serde.NewDecoder(f.reg)
	ctx := context.Background()
	got := map[int64]*change.Event{}
	var raw map[string]any // row 1's after image as goavro decodes it
	for _, r := range recs {
		ev, err := dec.DecodeEvent(ctx, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		id := ev.After["id"].(int64)
		got[id] = ev
		if id == 1 {
			raw = rawAfter(t, f, r.Value)
		}
	}
	snapshotted := maps.Clone(want)
	snapshotted["id"] = int64(3)
	for id, w := range map[int64]change.Row{1: want, 2: nulls, 3: snapshotted} {
		ev := got[id]
		if op := map[bool]change.Op{true: change.OpRead, false: change.OpCreate}[id == 3]; ev == nil || ev.Op != op {
			t.Fatalf("row %d: got %+v, want op %s", id, ev, op)
		}
		for col, v := range w {
			if g, ok := ev.After[col]; !ok || !reflect.DeepEqual(g, v) {
				t.Errorf("row %d column %s = %#v, want %#v", id, col, g, v)
			}
		}
		for col := range ev.After {
			if _, ok := w[col]; !ok {
				t.Errorf("row %d has unexpected column %s = %#v", id, col, ev.After[col])
			}
		}
	}

	// On the wire, as Debezium writes these types.
	for col, w := range map[string]any{
		"zoned_ts":    "2026-11-21T10:30:00.000000Z", // the column's 6 fractional digits
		"zoned_ts_ms": map[string]any{"string": "2026-11-21T10:30:00.120Z"},
		"clock_tz":    map[string]any{"string": "08:15:30.5Z"},
		"clock_ms":    map[string]any{"int": int32(86_399_999)},
		"local_ts_ms": map[string]any{"long": int64(1_795_257_000_123)},
		"span":        map[string]any{"long": int64(37_091_106_500_000)},
		"feeling":     map[string]any{"string": "happy"},
		"cash":        map[string]any{"bytes.decimal": big.NewRat(-123456, 100)},
		// Debezium's geometric structs and bit strings
		"spot": map[string]any{"io.debezium.data.geometry.Point": map[string]any{"x": 1.5, "y": -2.0,
			"wkb": map[string]any{"bytes": wkbPoint(1.5, -2)}, "srid": nil}},
		"axis": map[string]any{"io.debezium.data.geometry.Line": map[string]any{"a": -1.0, "b": 0.0, "c": 2.0}},
		"b1":   map[string]any{"boolean": true},
		"b10":  []byte{0x05, 0x02},
		"vb":   map[string]any{"bytes": []byte{0x05}},
		"route": map[string]any{"io.debezium.data.geometry.Geometry": map[string]any{"wkb": wkbLine(0, 0, 1, 1, 2, 0), "srid": nil,
			"extensions": map[string]any{"map": map[string]any{"type": "path", "closed": "false"}}}},
		"search": map[string]any{"string": "'a' 'cat' 'fat' 'mat' 'on' 'sat'"},
	} {
		if !reflect.DeepEqual(raw[col], w) {
			t.Errorf("column %s travels as %#v, want %#v", col, raw[col], w)
		}
	}
}

// rawAfter decodes an envelope with the schema the registry holds for it and
// returns its after record in goavro's native form.
func rawAfter(t *testing.T, f *fixture, value []byte) map[string]any {
	t.Helper()
	id, body, err := serde.SplitWire(value)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.reg.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(s.Schema)
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := codec.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct{ Namespace string }
	if err := json.Unmarshal([]byte(s.Schema), &schema); err != nil {
		t.Fatal(err)
	}
	return native.(map[string]any)["after"].(map[string]any)[schema.Namespace+".Value"].(map[string]any)
}

// TestCaptureTextSettingsWinOverSessionDefaults: a DSN (or a role, or the
// database) may set DateStyle, IntervalStyle and friends; capture pins its own
// on its connections so that values still decode.
func TestCaptureTextSettingsWinOverSessionDefaults(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, day date, span interval, at timestamptz, blob bytea)", f.name))
	f.dsn += "&options=" + strings.ReplaceAll(url.QueryEscape("-c intervalstyle=iso_8601 -c datestyle=German,DMY -c timezone=Asia/Tokyo -c bytea_output=escape"), "+", "%20")
	f.start(capture.Config{})
	f.exec(fmt.Sprintf("INSERT INTO %s VALUES (1, '2026-11-21', '1 day 02:00:00', '2026-11-21 10:30:00+00', '\\x00ff')", f.name))
	recs := f.consume(serde.Topic(f.prefix, "public", f.name), 1)
	want := change.Row{"id": int32(1), "day": time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
		"span": change.MicroDuration(26 * time.Hour / time.Microsecond),
		"at":   time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC), "blob": []byte{0, 0xff}}
	if got := recs[0].event.After; !reflect.DeepEqual(got, want) {
		t.Fatalf("after = %v, want %v", got, want)
	}
}

// TestInfiniteDatesAndTimestamps captures PostgreSQL's infinity and
// -infinity in date, timestamp and timestamptz columns, alone and in arrays,
// streamed and read by a snapshot: they travel as Debezium publishes them
// (extreme day counts and µs, the strings "infinity" and "-infinity") instead
// of going to the dead-letter topic, and decode into change.Infinity.
func TestInfiniteDatesAndTimestamps(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, day date, at timestamp, at_ms timestamp(3),
		zoned timestamptz NOT NULL, days date[])`, f.name))
	insert := "INSERT INTO " + f.name + " VALUES ($1, 'infinity', '-infinity', 'infinity', '-infinity', '{infinity,NULL,-infinity}')"
	f.exec(insert, 1) // read by the snapshot
	c := f.startCapture(capture.Config{})
	f.exec(insert, 2) // streamed

	pos, neg := change.PositiveInfinity, change.NegativeInfinity
	want := change.Row{"day": pos, "at": neg, "at_ms": pos, "zoned": neg, "days": []any{pos, nil, neg}}
	wire := map[string]any{
		"day":   map[string]any{"int": int32(-2147472692)},
		"at":    map[string]any{"long": int64(-9223372036832400000)},
		"at_ms": map[string]any{"long": int64(9223372036825200)},
		"zoned": "-infinity",
		"days":  map[string]any{"array": []any{map[string]any{"int": int32(-2147472692)}, nil, map[string]any{"int": int32(-2147472691)}}},
	}
	dec := serde.NewDecoder(f.reg)
	ops := map[int32]change.Op{}
	for _, r := range f.rawRecords(serde.Topic(f.prefix, "public", f.name), 2) {
		ev, err := dec.DecodeEvent(context.Background(), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		ops[ev.After["id"].(int32)] = ev.Op
		raw := rawAfter(t, f, r.Value)
		for col, w := range want {
			if !reflect.DeepEqual(ev.After[col], w) {
				t.Errorf("%s of row %v decodes to %#v, want %#v", col, ev.After["id"], ev.After[col], w)
			}
			if !reflect.DeepEqual(raw[col], wire[col]) {
				t.Errorf("%s of row %v travels as %#v, Debezium sends %#v", col, ev.After["id"], raw[col], wire[col])
			}
		}
	}
	if !maps.Equal(ops, map[int32]change.Op{1: change.OpRead, 2: change.OpCreate}) {
		t.Errorf("rows published %v, want 1 read by the snapshot and 2 streamed", ops)
	}
	if st := c.Stats(); st.DeadLettered != 0 {
		t.Errorf("%d changes dead-lettered", st.DeadLettered)
	}
}

// The well-known binary of geometries, as Debezium writes them.
func wkbPoint(x, y float64) []byte      { return wkb.Point(x, y) }
func wkbLine(xy ...float64) []byte      { return wkb.LineString(xy) }
func wkbPolygon(ring ...float64) []byte { return wkb.Polygon(ring) }
