package capture

import "github.com/cdcflow/cdcflow/change"

// markedRow is a snapshot read on its way out: its table, its row and the
// source.snapshot it gets.
type markedRow struct {
	t           *snapshotTable
	row         change.Row
	first       bool // the first row of its table
	lastOfTable bool
	marker      string
}

// snapshotMarks gives each read of a snapshot its source.snapshot as
// Debezium's PostgreSQL connector does (RelationalSnapshotChangeEventSource's
// setSnapshotMarker, then EventDispatcher's
// BufferingSnapshotChangeRecordReceiver.completeSnapshot): the very first
// read "first", each table's first and last reads "first_in_data_collection"
// and "last_in_data_collection" (last before first when a table has one row),
// the very last read "last", the others "true". Debezium reads one table
// after the other; capture reads them in parallel, so "first" is the first
// read it publishes, and a table's first and last are those of its reads it
// publishes first and last.
//
// It holds back each table's newest row until the next row of the table, or
// the table's end, says whether it is the table's last, and the newest
// decided row until the next one says it is not the snapshot's last. Not
// safe for concurrent use.
type snapshotMarks struct {
	held     map[*snapshotTable]*markedRow
	started  map[*snapshotTable]bool
	pending  *markedRow
	decided  bool
	emit     func(*markedRow) error // publishes a read with its marker
	finished func(*snapshotTable)   // called once all of a table's reads are emitted
}

func newSnapshotMarks(emit func(*markedRow) error, finished func(*snapshotTable)) *snapshotMarks {
	return &snapshotMarks{held: map[*snapshotTable]*markedRow{}, started: map[*snapshotTable]bool{}, emit: emit, finished: finished}
}

// add takes the next row read of table t.
func (m *snapshotMarks) add(t *snapshotTable, row change.Row) error {
	if h := m.held[t]; h != nil {
		if err := m.decide(h); err != nil {
			return err
		}
	}
	m.held[t] = &markedRow{t: t, row: row, first: !m.started[t]}
	m.started[t] = true
	return nil
}

// tableDone says that every row of t was added.
func (m *snapshotMarks) tableDone(t *snapshotTable) error {
	h := m.held[t]
	if h == nil { // an empty table
		m.finished(t)
		return nil
	}
	delete(m.held, t)
	h.lastOfTable = true
	return m.decide(h)
}

// decide gives h its marker (unless it turns out to be the very last) and
// emits the row decided before it.
func (m *snapshotMarks) decide(h *markedRow) error {
	switch {
	case h.first && !m.decided:
		h.marker = change.SnapshotFirst
	case h.lastOfTable:
		h.marker = change.SnapshotLastInTable
	case h.first:
		h.marker = change.SnapshotFirstInTable
	default:
		h.marker = change.SnapshotTrue
	}
	m.decided = true
	prev := m.pending
	m.pending = h
	if prev == nil {
		return nil
	}
	return m.publish(prev)
}

// finish emits the last read, marked "last", once every table is done.
func (m *snapshotMarks) finish() error {
	if m.pending == nil {
		return nil
	}
	m.pending.marker = change.SnapshotLast
	h := m.pending
	m.pending = nil
	return m.publish(h)
}

func (m *snapshotMarks) publish(h *markedRow) error {
	if err := m.emit(h); err != nil {
		return err
	}
	if h.lastOfTable {
		m.finished(h.t)
	}
	return nil
}
