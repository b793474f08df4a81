package engine

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
)

// SearchIndex keeps a search index in sync with a table's current rows: one
// document per row.
type SearchIndex struct {
	Input, Index, RowType string
	// Debezium marks an Input another Debezium connector writes.
	Debezium bool
	// Mapping is the index's mapping, "" for dynamic mapping.
	Mapping string
	// Decode reads a row into the user's row type; Doc is the user's
	// document function over it.
	Decode func(change.Row) (any, error)
	Doc    func(row any) (id string, doc any)
	Errs   []error
}

// Describe implements Node.
func (n *SearchIndex) Describe() string {
	return fmt.Sprintf("search index %s over %s (rows as %s)", n.Index, n.Input, n.RowType)
}

// Validate implements Node.
func (n *SearchIndex) Validate() error {
	if len(n.Errs) > 0 {
		return fmt.Errorf("search index %s over %s: %w", n.Index, n.Input, errors.Join(n.Errs...))
	}
	return nil
}

// Run implements Node.
func (n *SearchIndex) Run(rt Runtime) error { return rt.SearchIndex(n) }

// Document returns the id and body of row's document; row is a row of the
// node's table (for a delete, its before image or its key columns).
func (n *SearchIndex) Document(row change.Row) (id string, doc any, err error) {
	if n.Decode == nil {
		return "", nil, n.Validate()
	}
	v, err := n.Decode(row)
	if err != nil {
		return "", nil, err
	}
	id, doc = n.Doc(v)
	if id == "" {
		return "", nil, errors.New("the document function returned an empty id")
	}
	return id, doc, nil
}

// ReadModelIndex keeps a search index in sync with a read model: one
// document per document of the read model, under the read model's key,
// versioned by the read model's [ModelState.Revision].
type ReadModelIndex struct {
	Model          *ReadModel
	Index, Mapping string
	// Doc makes the search document from the read model's document, as
	// JSON.
	Doc  func(json.RawMessage) (any, error)
	Errs []error
}

// Describe implements Node.
func (n *ReadModelIndex) Describe() string {
	name := "<nil>"
	if n.Model != nil {
		name = n.Model.Name
	}
	return fmt.Sprintf("search index %s over read model %s", n.Index, name)
}

// Validate implements Node.
func (n *ReadModelIndex) Validate() error {
	if len(n.Errs) > 0 {
		return fmt.Errorf("%s: %w", n.Describe(), errors.Join(n.Errs...))
	}
	return nil
}

// Run implements Node.
func (n *ReadModelIndex) Run(rt Runtime) error { return rt.ReadModelIndex(n) }

// Document returns the search document of a read model state: ok is false
// when the read model holds no document (the root row is deleted, or not
// there yet), and the search document is to be deleted.
func (n *ReadModelIndex) Document(st *ModelState) (doc any, ok bool, err error) {
	if n.Doc == nil {
		return nil, false, n.Validate()
	}
	if st == nil || st.Document == nil {
		return nil, false, nil
	}
	doc, err = n.Doc(st.Document)
	return doc, err == nil, err
}
