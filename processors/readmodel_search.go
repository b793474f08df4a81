package processors

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// rawModelState is a record of a read model's table as the search index
// over it reads it: the state and the bytes it came from, or, for a record
// that cannot be decoded, the error (it goes to the dead-letter topic).
type rawModelState struct {
	raw []byte
	st  *topologies.ModelState // nil for a tombstone
	err error
}

type rawModelStateCodec struct{}

func (rawModelStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (rawModelStateCodec) Decode(data []byte) (any, error) {
	m := &rawModelState{raw: bytes.Clone(data)}
	if data == nil {
		return m, nil
	}
	var st topologies.ModelState
	if err := json.Unmarshal(data, &st); err != nil {
		m.err = fmt.Errorf("decode read model state: %w", err)
		return m, nil
	}
	m.st = &st
	return m, nil
}

// readModelSearchCallback applies each new state of a read model document
// to node's search index: a document is written, one that disappeared is
// deleted, each at the state's revision as external version, so that an
// older state read again (a replay of the table's topic) changes nothing.
// A state that cannot be indexed goes to the dead-letter topic, as a change
// does for an [topologies.IndexNode].
func (p *Processor) readModelSearchCallback(node *topologies.ReadModelIndexNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		m, ok := msg.(*rawModelState)
		if !ok || m == nil {
			return
		}
		if m.err != nil {
			p.deadLetter(gctx, m.raw, nil, m.err)
			return
		}
		if m.st == nil {
			return // read models keep their keys; nothing deletes them
		}
		p.changes.Add(1)
		ctx, id, index := gctx.Context(), gctx.Key(), node.IndexName()
		doc, exists, err := node.Document(m.st)
		if err != nil {
			p.deadLetter(gctx, m.raw, &m.st.Version, fmt.Errorf("search document %s of read model %s: %w", id, node.ReadModel().Name(), err))
			return
		}
		applied, err := p.searchWithRetry(ctx, index, id, func() (bool, error) {
			if err := p.search.Ensure(ctx, index, node.Mapping()); err != nil {
				return false, err
			}
			if !exists {
				return p.search.DeleteVersion(ctx, index, id, m.st.Revision)
			}
			return p.search.PutVersion(ctx, index, id, doc, m.st.Revision)
		})
		if err != nil {
			p.searchFailed(gctx, m.raw, &m.st.Version, fmt.Errorf("index read model %s document %s into %s: %w", node.ReadModel().Name(), id, index, err))
			return
		}
		if !applied {
			p.duplicates.Add(1)
		}
	}
}
