package topotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// Document is a search index document as an Index node, or the search
// index over a read model ([topologies.IndexReadModel]), wrote it.
type Document struct {
	Index string
	ID    string
	// Position is, for an Index node, the position of the change that wrote
	// it: its external version in Elasticsearch. For a read model's
	// document, it is the latest position of the rows the document is made
	// of (topologies.ModelState.Version).
	Position change.Position
	// Version is, for a read model's document, its external version in
	// Elasticsearch: the read model's topologies.ModelState.Revision. It is
	// 0 for an Index node's documents, versioned by Position.
	Version int64
	// Value is what the node's document function returned, and Source its
	// JSON, as Elasticsearch holds it.
	Value  any
	Source json.RawMessage

	deleted bool // a tombstone: the version of a delete
}

// Document returns the document id of index, and whether the index holds
// it.
func (h *Harness) Document(index, id string) (Document, bool) {
	d := h.docs[index][id]
	if d == nil || d.deleted {
		return Document{}, false
	}
	return *d, true
}

// Documents returns every document of index, by id.
func (h *Harness) Documents(index string) []Document {
	var out []Document
	for _, id := range sortedKeys(h.docs[index]) {
		if d := h.docs[index][id]; !d.deleted {
			out = append(out, *d)
		}
	}
	return out
}

// indexNode applies changes as the processor's search index sink does: an
// insert, update or snapshot read writes the row's document, a delete
// removes it, each with the change's position as external version, so that
// a change at or before the document's version (or its delete's) changes
// nothing. A change whose document cannot be made or stored goes to the
// dead-letter topic, and the node goes on.
type indexNode struct{ node *engine.SearchIndex }

func (x indexNode) apply(h *Harness, rec Record) error {
	ev := rec.Event
	if ev == nil {
		return nil // a tombstone: the delete before it did the work
	}
	h.stats.Changes++
	if ev.Op == change.OpTruncate {
		// Every document goes, at the truncate's version: those later
		// changes wrote stay.
		for _, id := range sortedKeys(h.docs[x.node.Index]) {
			h.putDocument(&Document{Index: x.node.Index, ID: id, Position: ev.Position, deleted: true},
				func(stored *Document) bool { return stored.Position.Compare(ev.Position) >= 0 })
		}
		return nil
	}
	applied, err := x.write(h, rec)
	if err != nil {
		h.deadLetter(rec, fmt.Errorf("index change of %s into %s: %w", ev.TableName(), x.node.Index, err))
		return nil
	}
	if !applied {
		h.stats.Duplicates++
	}
	return nil
}

func (x indexNode) write(h *Harness, rec Record) (bool, error) {
	ev := rec.Event
	row := ev.After
	if ev.Op == change.OpDelete {
		if row = ev.Before; row == nil {
			row = rec.Key
		}
	}
	id, value, err := x.node.Document(row)
	if err != nil {
		return false, fmt.Errorf("document of change at %s: %w", ev.Position, err)
	}
	index := x.node.Index
	doc := &Document{Index: index, ID: id, Position: ev.Position}
	if ev.Op == change.OpDelete {
		doc.deleted = true
	} else {
		if doc.Source, err = json.Marshal(value); err != nil {
			return false, fmt.Errorf("encode document %s: %w", id, err)
		}
		if !bytes.HasPrefix(doc.Source, []byte("{")) {
			return false, errors.New("document " + id + " is not a JSON object; Elasticsearch indexes objects only")
		}
		doc.Value = value
	}
	return h.putDocument(doc, func(stored *Document) bool { return stored.Position.Compare(ev.Position) >= 0 }), nil
}

// putDocument stores doc (a document, or a tombstone) unless the index
// holds a version of it that newer says is the same or newer; it tells
// whether it stored doc.
func (h *Harness) putDocument(doc *Document, newer func(stored *Document) bool) bool {
	docs := h.docs[doc.Index]
	if docs == nil {
		docs = map[string]*Document{}
		h.docs[doc.Index] = docs
	}
	if stored := docs[doc.ID]; stored != nil && newer(stored) {
		return false // the index holds this version or a newer one
	}
	docs[doc.ID] = doc
	return true
}
