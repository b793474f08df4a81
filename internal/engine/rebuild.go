package engine

import (
	"encoding/json"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
)

// CurrentRow is a row a table holds now, and its key columns.
type CurrentRow struct {
	Key, Row change.Row
}

// Rebuild returns the documents the read model holds, by root key, once
// every change that made rows is applied: rows are the current rows of its
// tables by topic (the root's, the children's and the references'), as the
// source holds them. It keeps, per root row, what the model stage would
// keep (the root row, its children, the rows it references) and builds the
// document from them with the same code, so that it equals what the
// processors hold after the changes were delivered in any order. Child rows
// whose parent is not a root row and rows no root row references make no
// document.
func (n *ReadModel) Rebuild(rows map[string][]CurrentRow) (map[string]json.RawMessage, error) {
	states := map[string]*ModelState{}
	roots := map[string]any{}
	for _, r := range rows[n.Root.Topic] {
		root, err := n.Root.Decode(r.Row)
		if err != nil {
			return nil, fmt.Errorf("read model %s: row %s of %s: %w", n.Name, ChildKey(r.Key), n.Root.Topic, err)
		}
		raw, err := marshalRow(root)
		if err != nil {
			return nil, err
		}
		key := n.Root.Key(root)
		states[key], roots[key] = &ModelState{Root: &Kept{Row: raw}}, root
	}
	for _, c := range n.Children {
		for _, r := range rows[c.Topic] {
			child, err := c.Decode(r.Row)
			if err != nil {
				return nil, fmt.Errorf("read model %s: row %s of %s: %w", n.Name, ChildKey(r.Key), c.Topic, err)
			}
			st := states[c.Parent(child)]
			if st == nil {
				continue
			}
			raw, err := marshalRow(child)
			if err != nil {
				return nil, err
			}
			if st.Children == nil {
				st.Children = map[string]map[string]*Kept{}
			}
			if st.Children[c.Topic] == nil {
				st.Children[c.Topic] = map[string]*Kept{}
			}
			st.Children[c.Topic][ChildKey(r.Key)] = &Kept{Row: raw}
		}
	}
	for _, ref := range n.Refs {
		referenced := map[string]json.RawMessage{}
		for _, r := range rows[ref.Topic] {
			row, err := ref.Decode(r.Row)
			if err != nil {
				return nil, fmt.Errorf("read model %s: row %s of %s: %w", n.Name, ChildKey(r.Key), ref.Topic, err)
			}
			if referenced[ref.Key(row)], err = marshalRow(row); err != nil {
				return nil, err
			}
		}
		for key, st := range states {
			fk := ref.FK(roots[key])
			raw, ok := referenced[fk]
			if fk == "" || !ok {
				continue
			}
			if st.Refs == nil {
				st.Refs = map[string]map[string]*Kept{}
			}
			st.Refs[ref.Topic] = map[string]*Kept{fk: {Row: raw}}
		}
	}
	docs := make(map[string]json.RawMessage, len(states))
	for key, st := range states {
		doc, err := n.build(st)
		if err != nil {
			return nil, fmt.Errorf("read model %s: build document %s: %w", n.Name, key, err)
		}
		docs[key] = doc
	}
	return docs, nil
}
