package topotest

import (
	"time"
)

// CompactMarkers drops, as a processor's marker sweep does
// (processors.Config.MarkerRetention), the markers of deleted rows that are
// older than retention at now, by the source commit time of the delete: the
// keys of read models' tables (both stages) that keep nothing else, and the
// entries of aggregates an OnDelete event deleted from projections'
// states. Each key compacted counts in Stats().Compacted, as a processor
// counts it. A change older
// than the retention delivered afterwards ([Harness.Redeliver]) is then
// applied as if its row had never been deleted.
func (h *Harness) CompactMarkers(now time.Time, retention time.Duration) {
	h.helper.Helper()
	for _, name := range sortedKeys(h.models) {
		m := h.models[name]
		for _, key := range sortedKeys(m.model) {
			if m.node.CompactModel(m.model[key], now, retention) {
				delete(m.model, key)
				h.stats.Compacted++
			}
		}
		for _, key := range sortedKeys(m.join) {
			if m.node.CompactJoin(m.join[key], now, retention) {
				delete(m.join, key)
				h.stats.Compacted++
			}
		}
	}
	for _, name := range sortedKeys(h.projections) {
		p := h.projections[name]
		for _, key := range sortedKeys(p.table) {
			next, changed, err := p.node.Compact(p.table[key], now, retention)
			if err != nil {
				h.t.Fatalf("topotest: %v", err)
			}
			if changed {
				p.table[key] = next
				h.stats.Compacted++
			}
		}
	}
}
