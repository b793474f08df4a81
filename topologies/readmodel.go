package topologies

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
)

// ReadModelNode keeps one document of type V per row of a root table,
// joined with the rows of child tables that point at it and with the rows
// of the tables it references: a CQRS read model such as an order summary
// (the order, its line items' total, its customer's name). Build it with
// [ReadModel]; serve it with package views.
//
// The processor keeps it in goka group tables of its own, named after the
// group the topology runs as and the read model: <group>-<name>-table holds
// the documents, keyed by the root key; <group>-<name>-join-table holds which
// root each child belongs to and which roots reference each referenced row,
// so that a customer's rename reaches every order of the customer.
type ReadModelNode[V any] struct{ e *engine.ReadModel }

// ReadModelPart is one input of a read model: its [Root], a table of
// [Children] or a [Reference].
type ReadModelPart[V any] interface {
	addTo(n *engine.ReadModel)
}

type partFunc[V any] func(n *engine.ReadModel)

func (f partFunc[V]) addTo(n *engine.ReadModel) { f(n) }

// Root declares the table a read model keeps one document per row of. key
// names the document: it must depend on the row's primary key columns only
// (a delete carries no others). apply fills the document from the row.
func Root[V, R any](table Table[R], key func(R) string, apply func(doc *V, row R)) ReadModelPart[V] {
	return partFunc[V](func(n *engine.ReadModel) {
		p := engine.RootPart{Topic: string(table.Topic), Debezium: table.Debezium, RowType: typeName[R]()}
		dec, err := newRowDecoder[R]()
		switch {
		case err != nil:
			p.Err = err
		case key == nil || apply == nil:
			p.Err = errors.New("root key or apply function is nil")
		default:
			p.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.Key = func(row any) string { return key(row.(R)) }
			p.Apply = func(doc, row any) { apply(doc.(*V), row.(R)) }
			p.Kept = func(b json.RawMessage) (any, error) {
				var row R
				err := json.Unmarshal(b, &row)
				return row, err
			}
		}
		if n.Root.Topic != "" {
			p.Err = fmt.Errorf("second root %s: a read model has one root table (%s)", table.Topic, n.Root.Topic)
		}
		n.Root = p
	})
}

// Children declares a table whose rows each belong to one document: parent
// returns the root key of the row's document (its foreign key), or "" for
// none. apply sees all the current rows of the document's children, in the
// order of their primary keys; a child whose parent changes moves to the new
// document.
func Children[V, C any](table Table[C], parent func(C) string, apply func(doc *V, rows []C)) ReadModelPart[V] {
	return partFunc[V](func(n *engine.ReadModel) {
		p := engine.ChildPart{Topic: string(table.Topic), Debezium: table.Debezium, RowType: typeName[C]()}
		dec, err := newRowDecoder[C]()
		switch {
		case err != nil:
			p.Err = err
		case parent == nil || apply == nil:
			p.Err = errors.New("children parent or apply function is nil")
		default:
			p.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.Parent = func(row any) string { return parent(row.(C)) }
			p.Apply = func(doc any, raw []json.RawMessage) error {
				rows := make([]C, len(raw))
				for i, b := range raw {
					if err := json.Unmarshal(b, &rows[i]); err != nil {
						return fmt.Errorf("decode kept %s row: %w", table.Topic, err)
					}
				}
				apply(doc.(*V), rows)
				return nil
			}
		}
		n.Children = append(n.Children, p)
	})
}

// Reference declares a table the root rows point at: key is the referenced
// row's own key, fk the key a root row references ("" for none). apply fills
// the document from the referenced row; it runs only while the row exists,
// and again whenever it changes, for every document that references it.
func Reference[V, R, F any](table Table[F], key func(F) string, fk func(root R) string, apply func(doc *V, row F)) ReadModelPart[V] {
	return partFunc[V](func(n *engine.ReadModel) {
		p := engine.RefPart{Topic: string(table.Topic), Debezium: table.Debezium, RowType: typeName[F]()}
		dec, err := newRowDecoder[F]()
		switch {
		case err != nil:
			p.Err = err
		case key == nil || fk == nil || apply == nil:
			p.Err = errors.New("reference key, foreign key or apply function is nil")
		default:
			p.Decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.Key = func(row any) string { return key(row.(F)) }
			p.FK = func(root any) string {
				r, ok := root.(R)
				if !ok {
					return ""
				}
				return fk(r)
			}
			p.Apply = func(doc any, raw json.RawMessage) error {
				var row F
				if err := json.Unmarshal(raw, &row); err != nil {
					return fmt.Errorf("decode kept %s row: %w", table.Topic, err)
				}
				apply(doc.(*V), row)
				return nil
			}
		}
		n.Refs = append(n.Refs, p)
	})
}

// ReadModel declares the read model name (lower-case letters, digits and
// '-'), one document of type V per row of its root table, built from parts:
// exactly one [Root], and any [Children] and [Reference] tables. A document
// is rebuilt from the kept rows on every change, so the apply functions must
// be pure: the same rows give the same document, whatever the order the
// changes came in.
//
// Every kept row remembers the position of the change that set it, and a
// change at or before it is ignored: redelivered and replayed changes, and
// a full rebuild, give the same documents. A deleted root row's document
// disappears; what it kept stays (as a marker) so that a replay does not
// bring it back.
func ReadModel[V any](name string, parts ...ReadModelPart[V]) *ReadModelNode[V] {
	n := &engine.ReadModel{Name: name, DocType: typeName[V](), NewDoc: func() any { return new(V) }}
	for _, p := range parts {
		if p == nil {
			n.Errs = append(n.Errs, errors.New("a part is nil"))
			continue
		}
		p.addTo(n)
	}
	return &ReadModelNode[V]{n}
}

// Consistent makes a read model transaction-consistent: besides its table,
// its processor publishes the documents each source transaction changed
// together, once every change of the transaction went through the read
// model, to the topic views.ConsistentReadModel reads; its readers never
// see half a transaction (an order without the line items committed with
// it). It needs the transaction topic capture writes (<prefix>.transaction,
// unless capture runs with --no-transaction-topic), and costs two goka
// groups and a message to the gate per document change. A change outside
// any transaction (a snapshot read) is a transaction of its own.
func Consistent[V any]() ReadModelPart[V] {
	return partFunc[V](func(n *engine.ReadModel) { n.Consistent = true })
}

// Name returns the read model's name.
func (n *ReadModelNode[V]) Name() string { return n.e.Name }

// Engine implements [Node].
func (n *ReadModelNode[V]) Engine() engine.Node { return n.e }

// Document decodes a document of the read model, as its table keeps it.
func (n *ReadModelNode[V]) Document(doc json.RawMessage) (V, error) {
	var v V
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, fmt.Errorf("read model %s: decode document as %s: %w", n.e.Name, n.e.DocType, err)
	}
	return v, nil
}
