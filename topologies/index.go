package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// IndexNode keeps a search index in sync with a table's current rows: one
// document per row. Build it with [Index].
type IndexNode struct {
	input    string
	index    string
	rowType  string
	mapping  string
	decode   func(change.Row) (any, error)
	document func(any) (string, any)
	errs     []error
}

// IndexOption configures an [IndexNode].
type IndexOption interface {
	applyIndex(*IndexNode)
}

type indexOption func(*IndexNode)

func (o indexOption) applyIndex(n *IndexNode) { o(n) }

// WithMapping gives the index the mapping mapping, a JSON object such as
// {"properties": {"status": {"type": "keyword"}}}, when the processor creates
// it (it creates the index when it starts if it is missing, and never
// changes an existing index). Without it the index maps fields dynamically.
func WithMapping(mapping string) IndexOption {
	return indexOption(func(n *IndexNode) { n.mapping = mapping })
}

// Index declares a search index named index over the current rows of table:
// document tells the id and the body (anything encoding/json marshals to an
// object) of a row's document. An insert or update writes the row's
// document, a delete removes it, so the index always holds document applied
// to every row of the table.
//
// document must be a pure function of the row, and the id must depend on the
// primary-key columns only: a delete carries only the key columns (with
// REPLICA IDENTITY DEFAULT), and the id of the deleted document is computed
// from it.
func Index[T any](table Table[T], index string, document func(T) (id string, doc any), opts ...IndexOption) *IndexNode {
	n := &IndexNode{input: table.Topic, index: index, rowType: fmt.Sprintf("%T", *new(T))}
	for _, o := range opts {
		o.applyIndex(n)
	}
	n.errs = append(n.errs, checkIndex(index, n.mapping)...)
	dec, err := newRowDecoder[T]()
	if err != nil {
		n.errs = append(n.errs, err)
	}
	if document == nil {
		n.errs = append(n.errs, errors.New("document function is nil"))
	}
	if len(n.errs) > 0 {
		return n
	}
	n.decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.document = func(row any) (string, any) { return document(row.(T)) }
	return n
}

// checkIndex checks an index's name and mapping.
func checkIndex(name, mapping string) []error {
	var errs []error
	if err := checkIndexName(name); err != nil {
		errs = append(errs, err)
	}
	if mapping != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(mapping), &m); err != nil {
			errs = append(errs, fmt.Errorf("mapping is not a JSON object: %w", err))
		}
	}
	return errs
}

// checkIndexName applies Elasticsearch's rules for index names.
func checkIndexName(name string) error {
	switch {
	case name == "":
		return errors.New("index name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("index name %q is not allowed", name)
	case len(name) > 255:
		return fmt.Errorf("index name %q is longer than 255 bytes", name)
	case strings.ToLower(name) != name:
		return fmt.Errorf("index name %q: use lower case only", name)
	case strings.ContainsAny(name[:1], "-_+"):
		return fmt.Errorf("index name %q must not start with '-', '_' or '+'", name)
	}
	if i := strings.IndexAny(name, ` \/*?"<>|,#:`); i >= 0 {
		return fmt.Errorf("index name %q must not contain %q (nor spaces or any of \\ / * ? \" < > | , # :)", name, name[i])
	}
	return nil
}

// Input returns the topic the node reads.
func (n *IndexNode) Input() string { return n.input }

// IndexName returns the name of the search index.
func (n *IndexNode) IndexName() string { return n.index }

// Mapping returns the mapping given with [WithMapping], or "".
func (n *IndexNode) Mapping() string { return n.mapping }

func (n *IndexNode) describe() string {
	return fmt.Sprintf("search index %s over %s (rows as %s)", n.index, n.input, n.rowType)
}

func (n *IndexNode) validate() error {
	if len(n.errs) > 0 {
		return fmt.Errorf("search index %s over %s: %w", n.index, n.input, errors.Join(n.errs...))
	}
	return nil
}

// Document returns the id and body of row's document; row is a Row of the
// node's table (for a delete, its before image or its key columns).
func (n *IndexNode) Document(row change.Row) (id string, doc any, err error) {
	if n.decode == nil {
		return "", nil, n.validate()
	}
	v, err := n.decode(row)
	if err != nil {
		return "", nil, err
	}
	id, doc = n.document(v)
	if id == "" {
		return "", nil, errors.New("the document function returned an empty id")
	}
	return id, doc, nil
}

// ReadModelIndexNode keeps a search index in sync with a read model: one
// document per document of the read model, under the read model's key. Build
// it with [IndexReadModel].
type ReadModelIndexNode struct {
	model    *ReadModelNode
	index    string
	mapping  string
	document func(json.RawMessage) (any, error)
	errs     []error
}

// IndexReadModel declares a search index named index over the documents of
// the read model model, which must be a node of the same topology: each
// document of the read model becomes a search document with the read
// model's key as id (an order summary, with its customer's name, under the
// order id), and a read model document that disappears (its root row
// deleted) removes it. document makes the search document from the read
// model's; nil indexes the read model's document as it is.
//
// The processor reads the read model's group table, and versions each
// search document by the read model's [ModelState.Revision], so that a
// replay or a redelivery never brings an older document back.
func IndexReadModel[V any](model *ReadModelNode, index string, document func(V) any, opts ...IndexOption) *ReadModelIndexNode {
	opt := &IndexNode{}
	for _, o := range opts {
		o.applyIndex(opt)
	}
	n := &ReadModelIndexNode{model: model, index: index, mapping: opt.mapping}
	n.errs = append(n.errs, checkIndex(index, n.mapping)...)
	switch {
	case model == nil:
		n.errs = append(n.errs, errors.New("the read model is nil"))
	case model.docType != typeName[V]():
		n.errs = append(n.errs, fmt.Errorf("read model %s keeps documents of type %s, not %s", model.name, model.docType, typeName[V]()))
	}
	if len(n.errs) > 0 {
		return n
	}
	n.document = func(raw json.RawMessage) (any, error) {
		var v V
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode read model %s document: %w", model.name, err)
		}
		if document == nil {
			return v, nil
		}
		return document(v), nil
	}
	return n
}

// Input returns "" : the node reads the read model's group table, whose
// topic depends on the consumer group the topology runs as (see
// processors.ReadModelGroup).
func (n *ReadModelIndexNode) Input() string { return "" }

// ReadModel returns the read model the index follows.
func (n *ReadModelIndexNode) ReadModel() *ReadModelNode { return n.model }

// IndexName returns the name of the search index.
func (n *ReadModelIndexNode) IndexName() string { return n.index }

// Mapping returns the mapping given with [WithMapping], or "".
func (n *ReadModelIndexNode) Mapping() string { return n.mapping }

func (n *ReadModelIndexNode) describe() string {
	name := "<nil>"
	if n.model != nil {
		name = n.model.name
	}
	return fmt.Sprintf("search index %s over read model %s", n.index, name)
}

func (n *ReadModelIndexNode) validate() error {
	if len(n.errs) > 0 {
		return fmt.Errorf("%s: %w", n.describe(), errors.Join(n.errs...))
	}
	return nil
}

// Document returns the search document of a read model state, a value of
// the read model's group table: ok is false when the read model holds no
// document (the root row is deleted, or not there yet), and the search
// document is to be deleted.
func (n *ReadModelIndexNode) Document(st *ModelState) (doc any, ok bool, err error) {
	if n.document == nil {
		return nil, false, n.validate()
	}
	if st == nil || st.Document == nil {
		return nil, false, nil
	}
	doc, err = n.document(st.Document)
	return doc, err == nil, err
}
