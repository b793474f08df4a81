package capture_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// TestSelectionAndPrivacy selects tables by wildcard with an exclusion,
// drops one column and masks another, in the snapshot and in the stream.
func TestSelectionAndPrivacy(t *testing.T) {
	f := newFixture(t)
	a, b, skip := f.name+"_a", f.name+"_b", f.name+"_skip"
	for _, tbl := range []string{a, b, skip} {
		f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, email text, ssn text, n int)", tbl))
		t.Cleanup(func() { f.db.Exec(context.Background(), "DROP TABLE IF EXISTS "+tbl) })
	}
	f.exec("INSERT INTO " + a + " VALUES (1, 'ann@example.com', '123-45-6789', 1)") // read by the snapshot
	const salt = "pepper"
	f.start(capture.Config{
		Tables: []string{"public." + f.name + "_*"}, ExcludeTables: []string{"public." + skip},
		ExcludeColumns: []string{"public." + f.name + "_*.ssn"}, MaskColumns: []string{"*.*.email"}, MaskSalt: salt,
	})
	f.exec("INSERT INTO " + a + " VALUES (2, 'bob@example.com', '987-65-4321', 2)")
	f.exec("INSERT INTO " + b + " VALUES (1, NULL, 'x', 3)")
	f.exec("INSERT INTO " + skip + " VALUES (1, 'c@example.com', 'y', 4)")

	hash := func(s string) string {
		sum := sha256.Sum256([]byte(salt + s))
		return hex.EncodeToString(sum[:])
	}
	recsA := f.consume(serde.Topic(f.prefix, "public", a), 2)
	want := []change.Row{
		{"id": int32(1), "email": hash("ann@example.com"), "n": int32(1)},
		{"id": int32(2), "email": hash("bob@example.com"), "n": int32(2)},
	}
	for i, w := range want {
		if got := recsA[i].event.After; !reflect.DeepEqual(got, w) {
			t.Errorf("%s record %d: %v, want %v", a, i, got, w)
		}
	}
	if got := f.consume(serde.Topic(f.prefix, "public", b), 1)[0].event.After; !reflect.DeepEqual(got, change.Row{"id": int32(1), "email": nil, "n": int32(3)}) {
		t.Errorf("%s: %v", b, got)
	}
	schema, err := f.reg.SchemaByVersion(context.Background(), serde.Topic(f.prefix, "public", a)+"-value", -1)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(schema.Schema.Schema, "ssn") {
		t.Errorf("the schema names the excluded column: %s", schema.Schema.Schema)
	}
	var n int
	if err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2", f.name, skip).Scan(&n); err != nil || n != 0 {
		t.Errorf("the excluded table is in the publication (%d, %v)", n, err)
	}
}
