package change

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DebeziumPosition returns the position of a change that one of Debezium's
// connectors wrote, made from the coordinates in its source block (and its
// transaction block, when the connector adds one:
// provide.transaction.metadata=true). Positions of one source compare in the
// order the source committed the changes; every sink compares them as it
// compares cdcflow's own, so a change delivered again, or a topic replayed,
// changes nothing.
//
//	connector            CommitLSN                                 Index                         Sub
//	mysql, mariadb       binlog file number << 32 | position       row in the event              0
//	mongodb              cluster time: seconds << 32 | ord         transaction.total_order or 0  0
//	postgresql           source.sequence[0] (last commit's end)    0                             source.lsn
//	                     (0 for snapshot reads, 1 before the first commit)
//
// MySQL and MariaDB: the file number is the binlog file name's numeric
// extension (mysql-bin.000042 is 42) and the position that of the row event
// in the file (below 4 GiB: binlog positions are 32 bits), so the order is
// the binlog's, the server's commit order, across rotations. It is total per
// server. A failover to another server, or RESET MASTER, starts coordinates
// that do not continue the old ones: rebuild the sinks (a new consumer group)
// after one. Snapshot reads are at the binlog position the snapshot started
// at, before every change streamed after it.
//
// MongoDB: the seconds are source.ts_ms / 1000 and ord the increment of the
// change's cluster time, so the order is the oplog's as long as the primary's
// wall clock (which MongoDB 6 and later sends as ts_ms) agrees with the
// cluster time's seconds. The changes of one multi-document transaction share
// a cluster time; with provide.transaction.metadata=true their
// transaction.total_order orders them, without it they share a position, and
// of two changes to one document in one transaction the second is taken for a
// duplicate.
//
// PostgreSQL (Debezium's own connector): source.sequence's first element is
// the end LSN of the last commit before the change's transaction, which grows
// from one transaction to the next, and source.lsn the change's own LSN,
// which grows within one; so the order is the commit order, total per slot,
// as cdcflow's own. Snapshot reads have no last commit (CommitLSN 0) and are
// at the snapshot's LSN; the first transaction the connector streams after
// them has none either and takes CommitLSN 1, so that it follows every
// snapshot read even when it began before the snapshot (its changes' LSNs
// are then below the snapshot's).
//
// Other connectors are an error: their changes cannot be ordered.
func DebeziumPosition(src Source, tx *Transaction) (Position, error) {
	switch src.Connector {
	case "mysql", "mariadb":
		n, err := binlogFileNumber(src.File)
		if err != nil {
			return Position{}, err
		}
		if src.Pos < 0 || src.Pos > 1<<32-1 {
			return Position{}, fmt.Errorf("source.pos %d out of range: binlog positions are 32 bits", src.Pos)
		}
		if src.Row < 0 {
			return Position{}, fmt.Errorf("source.row %d is negative", src.Row)
		}
		return Position{CommitLSN: LSN(n<<32 | uint64(src.Pos)), Index: uint32(src.Row)}, nil
	case "mongodb":
		if src.TsMs < 0 || src.TsMs/1000 > 1<<32-1 {
			return Position{}, fmt.Errorf("source.ts_ms %d out of range", src.TsMs)
		}
		p := Position{CommitLSN: LSN(uint64(src.TsMs/1000)<<32 | uint64(uint32(src.Ord)))}
		if tx != nil {
			if tx.TotalOrder < 0 || tx.TotalOrder > 1<<32-1 {
				return Position{}, fmt.Errorf("transaction.total_order %d out of range", tx.TotalOrder)
			}
			p.Index = uint32(tx.TotalOrder)
		}
		return p, nil
	case "postgresql":
		p := Position{Sub: uint64(src.LSN)}
		if src.Sequence != "" {
			last, _, err := ParseSequence(src.Sequence)
			if err != nil {
				return Position{}, err
			}
			p.CommitLSN = last
		}
		if p.CommitLSN == 0 && src.Snapshot == SnapshotFalse {
			// The first transaction streamed after the snapshot: after
			// every snapshot read, even if it began before the snapshot.
			p.CommitLSN = 1
		}
		if p.Sub == 0 {
			return Position{}, errors.New("source.lsn is missing: a PostgreSQL change without it cannot be ordered")
		}
		return p, nil
	case "":
		return Position{}, errors.New("source.connector is missing: not a Debezium change envelope")
	}
	return Position{}, fmt.Errorf("connector %q: cdcflow orders the changes of Debezium's mysql, mariadb, mongodb and postgresql connectors only", src.Connector)
}

// binlogFileNumber returns the numeric extension of a binlog file name.
func binlogFileNumber(file string) (uint64, error) {
	i := strings.LastIndexByte(file, '.')
	n, err := strconv.ParseUint(file[i+1:], 10, 31)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("source.file %q: want a binlog file name with a numeric extension (mysql-bin.000042)", file)
	}
	return n, nil
}
