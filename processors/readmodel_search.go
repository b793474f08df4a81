package processors

import (
	"encoding/json"
	"fmt"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/processors/searchindex"
	"github.com/lovoo/goka"
)

// readModelSearchCallback applies each new state of a read model document
// to node's search index: a document is written, one that disappeared is
// deleted, each at the state's sink version (engine.ModelState.SinkVersion)
// as external version, so that an older state read again (a replay of the
// table's topic) changes nothing, and a rebuilt read model's states (a later
// generation) write over what an earlier table left in the index.
// A state that cannot be indexed goes to the dead-letter topic, as a change
// does for a search index over a table.
func (p *Processor) readModelSearchCallback(node *engine.ReadModelIndex) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		if raw == nil {
			return // read models keep their keys; nothing deletes them
		}
		var st engine.ModelState
		if err := json.Unmarshal(raw, &st); err != nil {
			p.deadLetter(gctx, raw, nil, reasonMalformed, fmt.Errorf("decode read model state: %w", err))
			return
		}
		id, index := gctx.Key(), node.Index
		doc, exists, err := node.Document(&st)
		if err != nil {
			p.counters.change()
			p.deadLetter(gctx, raw, &st.Version, reasonUnapplicable, fmt.Errorf("search document %s of read model %s: %w", id, node.Model.Name, err))
			return
		}
		p.index.enqueue(gctx, searchWrite{
			op:      searchindex.Op{Index: index, ID: id, Doc: doc, Delete: !exists, Version: st.SinkVersion()},
			mapping: node.Mapping, what: fmt.Sprintf("index read model %s document %s into %s", node.Model.Name, id, index),
		}, raw, &st.Version)
	}
}
