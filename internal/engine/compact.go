package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// DefaultMarkerRetention is how long the tables of read models and
// projections keep the marker of a deleted row (or aggregate) by default,
// counted from the source commit time of its delete.
const DefaultMarkerRetention = 7 * 24 * time.Hour

// A marker is what a table keeps of a deleted row: its position, so that an
// older change of the row delivered later (a redelivery, a replay, a late
// message of the join stage) changes nothing. Markers of rows deleted long
// ago guard against nothing that still comes, and would make the tables grow
// with every row ever deleted, so the runtimes drop them once they are older
// than a retention, by the source commit time of the delete. What remains
// guaranteed: a change older than the retention delivered after its row's
// marker was dropped is applied as if the row had never been deleted (the
// row comes back, in the read model or the projection's state), until the
// delete is delivered again. A replay from the start of the topics
// delivers a row's changes in order, so it ends as it should; a change
// redelivered alone, more than the retention after its row was deleted, does
// not.

// expired tells whether a marker set at at (Unix ms, 0 for unknown) is older
// than retention at now. A marker of unknown time never expires.
func expired(at int64, now time.Time, retention time.Duration) bool {
	return at > 0 && now.Sub(time.UnixMilli(at)) > retention
}

// CompactModel tells whether the model stage may drop the state of a key:
// its root row was deleted more than retention ago (by the source commit
// time of the delete), and every child row it keeps is a marker that old
// too. The rows it references need not be: they are the referenced tables',
// and the join stage sends them again to a document that joins them.
func (n *ReadModel) CompactModel(st *ModelState, now time.Time, retention time.Duration) bool {
	if st == nil || st.Root == nil || st.Root.Row != nil || !expired(st.Root.At, now, retention) {
		return false
	}
	for _, kept := range st.Children {
		for _, k := range kept {
			if k.Row != nil || !expired(k.At, now, retention) {
				return false
			}
		}
	}
	return true
}

// CompactJoin tells whether the join stage may drop the state of a key: the
// marker of a root, child or referenced row deleted more than retention ago
// that no root row references.
func (n *ReadModel) CompactJoin(st *JoinState, now time.Time, retention time.Duration) bool {
	return st != nil && st.Deleted && len(st.Members) == 0 && expired(st.At, now, retention)
}

// Compact drops from stored, a value of the projection's table, the
// entries of aggregates that a Deletes handler's event ended more than
// retention ago (by the event's time). It returns the new value and whether
// anything was dropped; the state is left as it is.
func (n *Projection) Compact(stored []byte, now time.Time, retention time.Duration) (next []byte, changed bool, err error) {
	var v projectionValue
	if err := json.Unmarshal(stored, &v); err != nil {
		return nil, false, fmt.Errorf("projection %s: decode table value: %w", n.Name, err)
	}
	kept := maps.Clone(v.Applied)
	maps.DeleteFunc(kept, func(_ string, a appliedEvents) bool { return a.Deleted && expired(a.At, now, retention) })
	if len(kept) == len(v.Applied) {
		return nil, false, nil
	}
	v.Applied = kept
	if next, err = json.Marshal(v); err != nil {
		return nil, false, fmt.Errorf("projection %s: encode table value: %w", n.Name, err)
	}
	return next, true, nil
}
