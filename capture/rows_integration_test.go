package capture_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// TestRowsReadsWhatCapturePublishes reads a table's rows with capture.Rows
// and finds them equal, key and value, column by column and Go type by Go
// type, to the rows a consumer decodes from what capture published for the
// same table (masked and excluded columns included).
func TestRowsReadsWhatCapturePublishes(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %s (
		id bigint, line int4, price numeric(12,2), ratio numeric, flag boolean, day date, at timestamptz,
		clock time, span interval, body text, secret text, email text, tags text[], blob bytea,
		PRIMARY KEY (id, line))`, f.name))
	f.exec(fmt.Sprintf(`INSERT INTO %s VALUES
		(1, 1, 10.50, 3.14159265358979323846, true, '2026-11-21', '2026-11-21 10:30:00.5+02', '04:05:06.7', '1 day 02:00:00',
		 'héllo', 's3cret', 'ada@example.com', '{a,NULL,"b c"}', '\xdead'),
		(1, 2, NULL, NULL, NULL, NULL, '1970-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(2, 1, -0.01, 'NaN', false, 'infinity', '-infinity', '24:00:00', '-3 mons', '', '', '', '{}', '\x')`, f.name))
	cfg := capture.Config{ExcludeColumns: []string{"public." + f.name + ".secret"},
		MaskColumns: []string{"public." + f.name + ".email"}, MaskSalt: "pepper"}
	f.start(cfg)
	published := map[string]record{}
	for _, r := range f.consume(serde.Topic(f.prefix, "public", f.name), 3) {
		published[fmt.Sprint(r.key["id"], "/", r.key["line"])] = r
	}

	cfg.DSN = f.dsn
	rows, err := capture.OpenRows(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	read := 0
	err = rows.Read(context.Background(), "public", f.name, func(key, row change.Row) error {
		read++
		id := fmt.Sprint(key["id"], "/", key["line"])
		want, ok := published[id]
		if !ok || want.event == nil {
			return fmt.Errorf("row %s was not published", id)
		}
		if !reflect.DeepEqual(key, want.key) {
			t.Errorf("row %s: key %#v, published %#v", id, key, want.key)
		}
		for col, v := range want.event.After {
			// A numeric NaN is read as float64 NaN; the precise decimal
			// encoding publishes it as null, as Debezium does.
			if !reflect.DeepEqual(row[col], v) && !(isNaN(row[col]) && v == nil) {
				t.Errorf("row %s column %s: read %#v, published %#v", id, col, row[col], v)
			}
		}
		if len(row) != len(want.event.After) {
			t.Errorf("row %s: read columns %v, published %v", id, keys(row), keys(want.event.After))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if read != 3 {
		t.Errorf("read %d rows, want 3", read)
	}
	if err := rows.Read(context.Background(), "public", f.name+"_missing", func(_, _ change.Row) error { return nil }); err == nil {
		t.Error("a table that does not exist: no error")
	}
}

func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && f != f
}

func keys(r change.Row) []string {
	var out []string
	for k := range r {
		out = append(out, k)
	}
	return out
}
