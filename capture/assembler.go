package capture

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
)

// assembler turns the pgoutput messages of a replication stream into what
// capture publishes: change events, the transaction topic's BEGIN and END
// records, logical decoding messages and dead letters, each at its
// [change.Position], in stream order. It holds the stream's state (the
// relations pgoutput described, the open transaction with its counters, the
// end of the last commit) and drops what the checkpoint it resumes after
// says was published already. It does no I/O: the caller reads the catalog
// for Relation messages, encodes and produces. Not safe for concurrent use.
type assembler struct {
	cfg         *Config
	db          string
	want        map[string]bool       // captured tables, schema.table
	signalTable string                // schema.table; its inserts are signals
	resume      change.Position       // changes at or before it were published already
	snapshotLSN map[string]change.LSN // per table: changes committed before it are in its snapshot
	now         func() time.Time      // the envelopes' ts_ms

	relations  map[uint32]*relation // by relation id, as pgoutput announced them
	dec        *decoder
	tx         *txState   // the open transaction, nil between transactions
	lastCommit change.LSN // end of the last transaction (or non-transactional message) read
}

// newAssembler returns an assembler for the captured tables (schema.table)
// of the database db that resumes after ckpt.
func newAssembler(cfg *Config, db string, tables []string, ckpt Checkpoint, now func() time.Time) *assembler {
	a := &assembler{
		cfg: cfg, db: db, want: map[string]bool{}, resume: ckpt.Position, now: now,
		relations: map[uint32]*relation{}, dec: newDecoder(), lastCommit: ckpt.LastCommit,
	}
	if cfg.SignalTable != "" {
		schema, table, _ := splitTable(cfg.SignalTable)
		a.signalTable = schema + "." + table
	}
	for _, t := range tables {
		a.want[t] = true
	}
	if ckpt.Snapshot != nil {
		a.snapshotLSN = ckpt.Snapshot.Tables
	}
	return a
}

// An output is one step of publishing the stream, in order: one of the
// *Output types below.
type output interface{ isOutput() }

// eventOutput is a change event of a captured table. Raw is the change in
// PostgreSQL's text form, for the dead-letter topic should the event turn
// out to have no Avro form.
type eventOutput struct {
	Table *change.Table
	Event *change.Event
	LSN   change.LSN // of the change
	Raw   rawChange
}

// transactionOutput is a BEGIN or END record for the transaction topic.
type transactionOutput struct {
	Position change.Position
	Record   serde.TransactionRecord
}

// messageOutput is a logical decoding message for the message topic.
type messageOutput struct {
	Message *serde.Message
}

// deadLetterOutput is a change that could not be decoded, of the
// transaction XID.
type deadLetterOutput struct {
	Table    *change.Table
	LSN      change.LSN
	Position change.Position
	XID      uint32
	Raw      rawChange
	Cause    error
}

// skippedOutput is a change at or before the checkpoint capture resumed
// after: PostgreSQL sent it again, Kafka holds it already.
type skippedOutput struct {
	Position change.Position
}

// commitOutput is the end of a source transaction: every change of it came
// before. CommitTime is its commit time when it had captured changes, else
// zero.
type commitOutput struct {
	End        change.LSN
	CommitTime time.Time
}

// lastCommitOutput moves the end of the last commit read without ending a
// transaction: a non-transactional logical decoding message is its own
// commit, as in Debezium's streaming source.
type lastCommitOutput struct {
	LSN change.LSN
}

func (eventOutput) isOutput()       {}
func (transactionOutput) isOutput() {}
func (messageOutput) isOutput()     {}
func (deadLetterOutput) isOutput()  {}
func (skippedOutput) isOutput()     {}
func (commitOutput) isOutput()      {}
func (lastCommitOutput) isOutput()  {}

// txState is the transaction being streamed.
type txState struct {
	xid      uint32
	begin    change.LSN // the LSN of its BEGIN
	commit   change.LSN
	time     time.Time
	index    uint32
	perTable map[string]int64
	// origin and originLSN are the replication origin of a transaction
	// PostgreSQL's logical replication replayed (pgoutput's Origin message)
	// and its commit LSN there.
	origin    string
	originLSN change.LSN
	// signals counts the rows inserted into the signalling table.
	signals uint32
}

// relation records a Relation message: the table pgoutput describes, with
// what the catalog says of its columns (cols, in the message's order).
func (a *assembler) relation(m *pglogrepl.RelationMessage, cols []catalogColumn) error {
	t := &change.Table{Schema: m.Namespace, Name: m.RelationName, Columns: make([]change.Column, len(cols))}
	for i, c := range cols {
		t.Columns[i] = c.Column
		if c.DefaultExpr != nil {
			t.Columns[i].Default = columnDefault(a.dec, c.Column, *c.DefaultExpr)
		}
	}
	rel, err := newRelation(a.cfg, t)
	if err != nil {
		return err
	}
	a.relations[m.RelationID] = rel
	return nil
}

// message assembles the pgoutput message msg that starts at walStart, other
// than a Relation message (see relation), and returns what to publish for
// it. An error means the stream cannot be followed (a change outside a
// transaction, of a relation never described): capture must stop.
func (a *assembler) message(walStart change.LSN, msg pglogrepl.Message) ([]output, error) {
	var out []output
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return nil, fmt.Errorf("relation message %s.%s at %s without its catalog columns", m.Namespace, m.RelationName, walStart)
	case *pglogrepl.BeginMessage:
		a.tx = &txState{xid: m.Xid, begin: walStart, commit: change.LSN(m.FinalLSN), time: m.CommitTime,
			perTable: map[string]int64{}}
	case *pglogrepl.OriginMessage:
		if a.tx != nil {
			a.tx.origin, a.tx.originLSN = m.Name, change.LSN(m.CommitLSN)
		}
	case *pglogrepl.CommitMessage:
		tx := a.tx
		if tx == nil {
			return nil, fmt.Errorf("commit at %s without a transaction", m.CommitLSN)
		}
		end := change.LSN(m.TransactionEndLSN)
		done := commitOutput{End: end}
		if tx.index > 0 {
			out = a.transactionRecord(out, serde.TransactionEnd, end)
			done.CommitTime = tx.time
		}
		a.tx, a.lastCommit = nil, end
		out = append(out, done)
	case *pglogrepl.LogicalDecodingMessage:
		out = a.logicalMessage(out, m)
	case *pglogrepl.InsertMessage:
		return a.change(walStart, m.RelationID, change.OpCreate, nil, 0, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return a.change(walStart, m.RelationID, change.OpUpdate, m.OldTuple, m.OldTupleType, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return a.change(walStart, m.RelationID, change.OpDelete, m.OldTuple, m.OldTupleType, nil)
	case *pglogrepl.TruncateMessage:
		return a.truncate(walStart, m)
	}
	// Type messages publish nothing.
	return out, nil
}

// change assembles a row change at lsn to relation relID.
func (a *assembler) change(lsn change.LSN, relID uint32, op change.Op,
	oldTuple *pglogrepl.TupleData, oldType uint8, newTuple *pglogrepl.TupleData) ([]output, error) {
	tx := a.tx
	if tx == nil {
		return nil, fmt.Errorf("change at %s outside a transaction", lsn)
	}
	rel, ok := a.relations[relID]
	if !ok {
		return nil, fmt.Errorf("change at %s to relation %d that pgoutput never described", lsn, relID)
	}
	t := rel.pub
	if !a.want[t.String()] {
		if t.String() == a.signalTable && op == change.OpCreate {
			return a.signal(rel, newTuple), nil
		}
		return nil, nil // published, but not captured by this configuration
	}
	if a.skips(op) && op != change.OpUpdate { // an update may become a delete and a create
		return nil, nil
	}
	oldTuple, newTuple = rel.tuple(a.cfg.MaskSalt, oldTuple), rel.tuple(a.cfg.MaskSalt, newTuple)
	raw := rawChange{Schema: t.Schema, Table: t.Name, Op: op.String(), table: t, before: oldTuple, after: newTuple}
	after, err := a.dec.row(t, newTuple)
	if err != nil {
		return a.deadLetter(nil, t, lsn, raw, err), nil
	}
	var before change.Row
	switch oldType {
	case pglogrepl.UpdateMessageTupleTypeOld: // REPLICA IDENTITY FULL
		before, err = a.dec.row(t, oldTuple)
	case pglogrepl.UpdateMessageTupleTypeKey: // the key changed, or a delete
		before, err = a.dec.keyRow(t, oldTuple)
	}
	if err != nil {
		return a.deadLetter(nil, t, lsn, raw, err), nil
	}
	// An unchanged TOASTed value is left out of the new row; with a full
	// before image it is known.
	for col, v := range after {
		if _, ok := v.(change.Unavailable); ok && oldType == pglogrepl.UpdateMessageTupleTypeOld {
			after[col] = before[col]
		}
	}
	if op == change.OpUpdate && before != nil && keyChanged(t, before, after) {
		// Debezium's way: a delete of the old key (and its tombstone), then
		// a create of the new one.
		out := a.event(nil, t, lsn, change.OpDelete, before, nil, raw)
		return a.event(out, t, lsn, change.OpCreate, nil, after, raw), nil
	}
	return a.event(nil, t, lsn, op, before, after, raw), nil
}

func keyChanged(t *change.Table, before, after change.Row) bool {
	for _, col := range t.KeyColumns() {
		if fmt.Sprint(before[col.Name]) != fmt.Sprint(after[col.Name]) {
			return true
		}
	}
	return false
}

// id is the id of tx in an envelope of a change at lsn, or in its BEGIN or
// END record at the LSN of its BEGIN or end: "<txId>:<LSN>", as Debezium's
// PostgresTransactionMonitor forms it from the LSN it last saw.
func (tx *txState) id(lsn change.LSN) string {
	b := strconv.AppendUint(make([]byte, 0, 32), uint64(tx.xid), 10) // for every change: strconv, not fmt
	return string(strconv.AppendUint(append(b, ':'), uint64(lsn), 10))
}

// source is the source block of a change of the open transaction at lsn to
// table t (nil for a logical decoding message).
func (a *assembler) source(t *change.Table, lsn change.LSN) change.Source {
	tx := a.tx
	s := change.Source{
		Version: Version, Connector: "postgresql", Name: a.cfg.TopicPrefix,
		TsMs: tx.time.UnixMilli(), Snapshot: change.SnapshotFalse, DB: a.db,
		Sequence: change.SequenceFor(a.lastCommit, lsn), TsUs: tx.time.UnixMicro(), TsNs: tx.time.UnixNano(),
		TxID: int64(tx.xid), LSN: lsn, Origin: tx.origin, OriginLSN: tx.originLSN,
	}
	if t != nil {
		s.Schema, s.Table = t.Schema, t.Name
	}
	return s
}

// transaction is the transaction block of the change of tx at lsn that is
// its latest, to table ("" for a logical decoding message).
func (tx *txState) transaction(lsn change.LSN, table string) *change.Transaction {
	return &change.Transaction{ID: tx.id(lsn), TotalOrder: int64(tx.index), DataCollectionOrder: tx.perTable[table], CommitLSN: tx.commit}
}

// position is the position of the open transaction's latest change.
func (tx *txState) position() change.Position {
	return change.Position{CommitLSN: tx.commit, Index: tx.index}
}

// event appends one change event of the open transaction to out, unless a
// previous run published it already. The first event of a transaction is
// preceded by its BEGIN record.
func (a *assembler) event(out []output, t *change.Table, lsn change.LSN, op change.Op, before, after change.Row, raw rawChange) []output {
	if a.skips(op) {
		return out // Config.SkippedOperations: neither published nor counted
	}
	out = a.next(out, t.String())
	tx := a.tx
	ev := &change.Event{
		Op: op, Before: before, After: after,
		Source:      a.source(t, lsn),
		Transaction: tx.transaction(lsn, t.String()),
		TsMs:        a.now().UnixMilli(),
		Position:    tx.position(),
	}
	if ev.Position.Compare(a.resume) <= 0 {
		return append(out, skippedOutput{Position: ev.Position}) // committed to Kafka before a restart
	}
	if tx.commit < a.snapshotLSN[t.String()] {
		return out // committed before the table's snapshot, which holds it
	}
	return append(out, eventOutput{Table: t, Event: ev, LSN: lsn, Raw: raw})
}

// logicalMessage appends a logical decoding message to out, unless it is a
// heartbeat or its prefix is not selected. A transactional message is a
// change of its transaction; a non-transactional one stands alone at its LSN.
func (a *assembler) logicalMessage(out []output, m *pglogrepl.LogicalDecodingMessage) []output {
	lsn := change.LSN(m.LSN)
	transactional := m.Transactional && a.tx != nil
	if !transactional {
		// Debezium's streaming source: a non-transactional message is its
		// own commit; later changes have it as their last commit.
		a.lastCommit = lsn
		out = append(out, lastCommitOutput{LSN: lsn})
	}
	if m.Prefix == WatermarkPrefix && transactional {
		return append(out, watermarkOutput{Content: string(m.Content), Commit: a.tx.commit})
	}
	if m.Prefix == HeartbeatPrefix || m.Prefix == WatermarkPrefix ||
		(len(a.cfg.MessagePrefixes) > 0 && !slices.Contains(a.cfg.MessagePrefixes, m.Prefix)) {
		return out
	}
	msg := &serde.Message{Prefix: m.Prefix, Content: m.Content, TsMs: a.now().UnixMilli()}
	if transactional {
		out = a.next(out, "") // a message counts towards its transaction, in no table
		msg.Position = a.tx.position()
		msg.Source, msg.Transaction = a.source(nil, lsn), a.tx.transaction(lsn, "")
	} else {
		msg.Position = change.Position{CommitLSN: lsn}
		msg.Source = change.Source{Version: Version, Connector: "postgresql", Name: a.cfg.TopicPrefix,
			TsMs: msg.TsMs, Snapshot: change.SnapshotFalse, DB: a.db, Sequence: change.SequenceFor(lsn, lsn), LSN: lsn}
	}
	if msg.Position.Compare(a.resume) <= 0 {
		return append(out, skippedOutput{Position: msg.Position})
	}
	return append(out, messageOutput{Message: msg})
}

// next counts one more event of table in the open transaction ("" for
// messages); the transaction's first event is preceded by its BEGIN record.
func (a *assembler) next(out []output, table string) []output {
	tx := a.tx
	tx.index++
	tx.perTable[table]++
	if tx.index == 1 {
		return a.transactionRecord(out, serde.TransactionBegin, tx.begin)
	}
	return out
}

// rawChange is a change in PostgreSQL's text form: what the dead-letter
// topic keeps of a change capture could not encode.
//
// A streamed change keeps its tuples instead of Before and After, which
// only text makes, when needed: most changes never need them. The tuples
// point into the replication message, valid until the next is received, so
// text must be called before (stream emits a message's outputs before it
// receives the next).
type rawChange struct {
	Schema   string             `json:"schema"`
	Table    string             `json:"table"`
	Op       string             `json:"op"`
	Before   map[string]*string `json:"before"`
	After    map[string]*string `json:"after"`
	Position string             `json:"position"`
	LSN      string             `json:"lsn"`
	Error    string             `json:"error"`

	table         *change.Table
	before, after *pglogrepl.TupleData
}

// text returns r with Before and After made from its tuples, if it has
// them.
func (r rawChange) text() rawChange {
	if r.table != nil {
		r.Before, r.After = rawTuple(r.table, r.before), rawTuple(r.table, r.after)
		r.table, r.before, r.after = nil, nil, nil
	}
	return r
}

func rawTuple(t *change.Table, tuple *pglogrepl.TupleData) map[string]*string {
	if tuple == nil {
		return nil
	}
	out := make(map[string]*string, len(tuple.Columns))
	for i, col := range tuple.Columns {
		if i >= len(t.Columns) {
			break
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			out[t.Columns[i].Name] = nil
		case pglogrepl.TupleDataTypeToast:
			v := change.UnavailablePlaceholder
			out[t.Columns[i].Name] = &v
		default:
			v := string(col.Data)
			out[t.Columns[i].Name] = &v
		}
	}
	return out
}

// deadLetter appends a change of the open transaction that could not be
// decoded to out, counted as an event of the transaction.
func (a *assembler) deadLetter(out []output, t *change.Table, lsn change.LSN, raw rawChange, cause error) []output {
	out = a.next(out, t.String())
	pos := a.tx.position()
	if pos.Compare(a.resume) <= 0 {
		return append(out, skippedOutput{Position: pos})
	}
	return append(out, deadLetterOutput{Table: t, LSN: lsn, Position: pos, XID: a.tx.xid, Raw: raw, Cause: cause})
}

// The positions of a transaction's BEGIN and END records: before its first
// and after its last change, so that a restart skips them like changes.
const (
	beginIndex = 0
	endIndex   = ^uint32(0)
)

// transactionRecord appends the open transaction's BEGIN or END record for
// the transaction topic to out, unless a previous run published it; lsn is
// the LSN of the BEGIN, or the end of the transaction.
func (a *assembler) transactionRecord(out []output, status serde.TransactionStatus, lsn change.LSN) []output {
	if a.cfg.NoTransactionTopic {
		return out
	}
	tx := a.tx
	pos := change.Position{CommitLSN: tx.commit, Index: beginIndex}
	rec := serde.TransactionRecord{Status: status, ID: tx.id(lsn), TsMs: tx.time.UnixMilli()}
	if status == serde.TransactionEnd {
		pos.Index = endIndex
		rec.EventCount = int64(tx.index)
		for _, name := range slices.Sorted(maps.Keys(tx.perTable)) {
			if name == "" {
				continue // logical decoding messages
			}
			rec.DataCollections = append(rec.DataCollections, serde.DataCollectionCount{DataCollection: name, EventCount: tx.perTable[name]})
		}
	}
	if pos.Compare(a.resume) <= 0 {
		return out
	}
	return append(out, transactionOutput{Position: pos, Record: rec})
}
