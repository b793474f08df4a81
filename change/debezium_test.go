package change

import (
	"strings"
	"testing"
)

// TestDebeziumPositionOrdersEachConnector checks, per connector, that
// DebeziumPosition orders changes as the source committed them (across a
// binlog rotation, within a multi-row event, within a MongoDB transaction,
// after a PostgreSQL snapshot), and that a source block it cannot order is
// an error naming the field.
func TestDebeziumPositionOrdersEachConnector(t *testing.T) {
	pgSnap := Source{Connector: "postgresql", Snapshot: SnapshotLast, LSN: 500, Sequence: `[null,"500"]`}
	for _, tc := range []struct {
		name          string
		earlier, then Source
		etx, ttx      *Transaction
	}{
		{"mysql: a later position in the file", Source{Connector: "mysql", File: "mysql-bin.000003", Pos: 2526}, Source{Connector: "mysql", File: "mysql-bin.000003", Pos: 2801}, nil, nil},
		{"mariadb: across a rotation", Source{Connector: "mariadb", File: "mariadb-bin.000003", Pos: 3560}, Source{Connector: "mariadb", File: "mariadb-bin.000004", Pos: 548}, nil, nil},
		{"mariadb: rows of one event", Source{Connector: "mariadb", File: "mariadb-bin.000004", Pos: 1299, Row: 0}, Source{Connector: "mariadb", File: "mariadb-bin.000004", Pos: 1299, Row: 1}, nil, nil},
		{"mysql: file numbers, not names", Source{Connector: "mysql", File: "bin.999999", Pos: 4}, Source{Connector: "mysql", File: "bin.1000000", Pos: 4}, nil, nil},
		{"mongodb: a later ord in the same second", Source{Connector: "mongodb", TsMs: 1795310280000, Ord: 1}, Source{Connector: "mongodb", TsMs: 1795310280001, Ord: 2}, nil, nil},
		{"mongodb: a later second", Source{Connector: "mongodb", TsMs: 1795310280000, Ord: 9}, Source{Connector: "mongodb", TsMs: 1795310281000, Ord: 1}, nil, nil},
		{"mongodb: one transaction", Source{Connector: "mongodb", TsMs: 1795310220000, Ord: 1}, Source{Connector: "mongodb", TsMs: 1795310220000, Ord: 1},
			&Transaction{TotalOrder: 1}, &Transaction{TotalOrder: 2}},
		{"postgresql: within a transaction", Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 904, Sequence: `["904","904"]`}, Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 1056, Sequence: `["904","1056"]`}, nil, nil},
		{"postgresql: a later transaction with a lower LSN", Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 1056, Sequence: `["904","1056"]`}, Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 950, Sequence: `["1200","950"]`}, nil, nil},
		{"postgresql: the first transaction began before the snapshot", pgSnap, Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 480, Sequence: `[null,"480"]`}, nil, nil},
		{"postgresql: the first transaction, then the next", Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 480, Sequence: `[null,"480"]`}, Source{Connector: "postgresql", Snapshot: SnapshotFalse, LSN: 700, Sequence: `["600","700"]`}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DebeziumPosition(tc.earlier, tc.etx)
			if err != nil {
				t.Fatal(err)
			}
			q, err := DebeziumPosition(tc.then, tc.ttx)
			if err != nil {
				t.Fatal(err)
			}
			if p.Compare(q) >= 0 || p.String() >= q.String() {
				t.Errorf("position %s is not before %s", p, q)
			}
		})
	}
	for _, tc := range []struct {
		name string
		src  Source
		says string
	}{
		{"a binlog file without a number", Source{Connector: "mysql", File: "binlog", Pos: 4}, "source.file"},
		{"a position beyond 32 bits", Source{Connector: "mariadb", File: "b.000001", Pos: 1 << 33}, "source.pos"},
		{"PostgreSQL without an LSN", Source{Connector: "postgresql"}, "source.lsn is missing"},
		{"PostgreSQL with a bad sequence", Source{Connector: "postgresql", LSN: 5, Sequence: "[5]"}, "sequence"},
		{"no connector", Source{}, "source.connector is missing"},
		{"another connector", Source{Connector: "sqlserver"}, `connector "sqlserver"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DebeziumPosition(tc.src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %v does not say %q", err, tc.says)
			}
		})
	}
}
