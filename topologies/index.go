package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// IndexNode keeps a search index in sync with a table's current rows: one
// document per row. Build it with [Index].
type IndexNode struct{ e *engine.SearchIndex }

// IndexOption configures a search index: [Index] or [IndexReadModel].
type IndexOption interface {
	applyIndex(*indexConfig)
}

type indexConfig struct{ mapping string }

type indexOption func(*indexConfig)

func (o indexOption) applyIndex(c *indexConfig) { o(c) }

// WithMapping gives the index the mapping mapping, a JSON object such as
// {"properties": {"status": {"type": "keyword"}}}, when the processor creates
// it (it creates the index when it starts if it is missing, and never
// changes an existing index). Without it the index maps fields dynamically.
func WithMapping(mapping string) IndexOption {
	return indexOption(func(c *indexConfig) { c.mapping = mapping })
}

func indexOptions(opts []IndexOption) indexConfig {
	var c indexConfig
	for _, o := range opts {
		o.applyIndex(&c)
	}
	return c
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
	n := &engine.SearchIndex{Input: string(table.Topic), Debezium: table.Debezium, Index: index, RowType: typeName[T](), Mapping: indexOptions(opts).mapping}
	n.Errs = append(n.Errs, checkIndex(index, n.Mapping)...)
	dec, err := newRowDecoder[T]()
	if err != nil {
		n.Errs = append(n.Errs, err)
	}
	if document == nil {
		n.Errs = append(n.Errs, errors.New("document function is nil"))
	}
	if len(n.Errs) > 0 {
		return &IndexNode{n}
	}
	n.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
	n.Doc = func(row any) (string, any) { return document(row.(T)) }
	return &IndexNode{n}
}

// Engine implements [Node].
func (n *IndexNode) Engine() engine.Node { return n.e }

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

// ReadModelIndexNode keeps a search index in sync with a read model: one
// document per document of the read model, under the read model's key. Build
// it with [IndexReadModel].
type ReadModelIndexNode struct{ e *engine.ReadModelIndex }

// IndexReadModel declares a search index named index over the documents of
// the read model model, which must be a node of the same topology: each
// document of the read model becomes a search document with the read
// model's key as id (an order summary, with its customer's name, under the
// order id), and a read model document that disappears (its root row
// deleted) removes it. document makes the search document from the read
// model's; nil indexes the read model's document as it is.
//
// The processor reads the read model's group table, and versions each
// search document by the read model's revision of it (a count of the
// changes applied to the document's rows), so that a replay or a redelivery
// never brings an older document back.
func IndexReadModel[V any](model *ReadModelNode[V], index string, document func(V) any, opts ...IndexOption) *ReadModelIndexNode {
	n := &engine.ReadModelIndex{Index: index, Mapping: indexOptions(opts).mapping}
	n.Errs = append(n.Errs, checkIndex(index, n.Mapping)...)
	if model == nil {
		n.Errs = append(n.Errs, errors.New("the read model is nil"))
		return &ReadModelIndexNode{n}
	}
	n.Model = model.e
	n.Doc = func(raw json.RawMessage) (any, error) {
		v, err := model.Document(raw)
		if err != nil || document == nil {
			return v, err
		}
		return document(v), nil
	}
	return &ReadModelIndexNode{n}
}

// Engine implements [Node].
func (n *ReadModelIndexNode) Engine() engine.Node { return n.e }
