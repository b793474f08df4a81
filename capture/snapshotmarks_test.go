package capture

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
)

// TestSnapshotMarks feeds snapshotMarks the reads of tables in the orders
// capture's readers hand them over and checks the source.snapshot of each
// read against what Debezium's setSnapshotMarker and completeSnapshot give
// the same reads, and that a table is finished only once its last read is
// out. A script is a list of "add T", "done T" and "finish"; the rows of a
// table are numbered in the order they are added.
func TestSnapshotMarks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   string // emitted reads, "T<n>:<marker>", then finished tables "end T"
	}{
		{"one table, one row", "add A, done A, finish",
			"A1:last, end A"},
		{"one table, three rows", "add A, add A, add A, done A, finish",
			"A1:first, A2:true, A3:last, end A"},
		{"two tables one after the other, as Debezium reads them", "add A, add A, done A, add B, add B, add B, done B, finish",
			"A1:first, A2:last_in_data_collection, end A, B1:first_in_data_collection, B2:true, B3:last, end B"},
		{"interleaved tables", "add A, add B, add A, add B, done A, add B, done B, finish",
			"A1:first, B1:first_in_data_collection, A2:last_in_data_collection, end A, B2:true, B3:last, end B"},
		{"a one-row table in the middle", "add A, add A, done A, add C, done C, add B, add B, done B, finish",
			"A1:first, A2:last_in_data_collection, end A, C1:last_in_data_collection, end C, B1:first_in_data_collection, B2:last, end B"},
		{"the last table is empty: the last read of another is last", "add A, add A, done A, done B, finish",
			"A1:first, end B, A2:last, end A"},
		{"no rows at all", "done A, finish", "end A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tables := map[string]*snapshotTable{}
			table := func(name string) *snapshotTable {
				if tables[name] == nil {
					tables[name] = &snapshotTable{name: name}
				}
				return tables[name]
			}
			marks := newSnapshotMarks(func(r *markedRow) error {
				got = append(got, fmt.Sprintf("%s%d:%s", r.t.name, r.row["n"], r.marker))
				return nil
			}, func(t *snapshotTable) { got = append(got, "end "+t.name) })
			rows := map[string]int{}
			for _, step := range strings.Split(tc.script, ", ") {
				verb, name, _ := strings.Cut(step, " ")
				var err error
				switch verb {
				case "add":
					rows[name]++
					err = marks.add(table(name), change.Row{"n": rows[name]})
				case "done":
					err = marks.tableDone(table(name))
				case "finish":
					err = marks.finish()
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			if want := strings.Split(tc.want, ", "); !reflect.DeepEqual(got, want) {
				t.Errorf("emitted %q\nwant    %q", got, want)
			}
		})
	}
}
