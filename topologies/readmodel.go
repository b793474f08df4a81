package topologies

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// ReadModelNode keeps one document per row of a root table, joined with the
// rows of child tables that point at it and with the rows of the tables it
// references: a CQRS read model such as an order summary (the order, its
// line items' total, its customer's name). Build it with [ReadModel].
//
// The processor keeps it in goka group tables of its own, named after the
// topology and the read model: <topology>-<name>-table holds the documents,
// keyed by the root key; <topology>-<name>-index-table holds which root each
// child belongs to and which roots reference each referenced row, so that a
// customer's rename reaches every order of the customer.
type ReadModelNode struct {
	name     string
	root     rootPart
	children []childPart
	refs     []refPart
	docType  string
	newDoc   func() any
	err      error
}

// rootPart is the table a read model keeps one document per row of.
type rootPart struct {
	topic   string
	rowType string
	decode  func(change.Row) (any, error)
	key     func(any) string
	apply   func(doc, row any)
	kept    func(json.RawMessage) (any, error)
	err     error
}

// childPart is a table whose rows belong to one root row each (line items to
// their order).
type childPart struct {
	topic   string
	rowType string
	decode  func(change.Row) (any, error)
	parent  func(any) string
	apply   func(doc any, rows []json.RawMessage) error
	err     error
}

// refPart is a table the root rows reference (an order's customer).
type refPart struct {
	topic   string
	rowType string
	decode  func(change.Row) (any, error)
	key     func(any) string // the referenced row's own key
	fk      func(root any) string
	apply   func(doc any, row json.RawMessage) error
	err     error
}

// ReadModelPart is one input of a read model: its [Root], a table of
// [Children] or a [Reference].
type ReadModelPart[V any] interface {
	addTo(n *ReadModelNode)
}

type partFunc[V any] func(n *ReadModelNode)

func (f partFunc[V]) addTo(n *ReadModelNode) { f(n) }

// Root declares the table a read model keeps one document per row of. key
// names the document: it must depend on the row's primary key columns only
// (a delete carries no others). apply fills the document from the row.
func Root[V, R any](table Table[R], key func(R) string, apply func(doc *V, row R)) ReadModelPart[V] {
	return partFunc[V](func(n *ReadModelNode) {
		p := rootPart{topic: table.Topic, rowType: typeName[R]()}
		dec, err := newRowDecoder[R]()
		switch {
		case err != nil:
			p.err = err
		case key == nil || apply == nil:
			p.err = errors.New("root key or apply function is nil")
		default:
			p.decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.key = func(row any) string { return key(row.(R)) }
			p.apply = func(doc, row any) { apply(doc.(*V), row.(R)) }
			p.kept = func(b json.RawMessage) (any, error) {
				var row R
				err := json.Unmarshal(b, &row)
				return row, err
			}
		}
		if n.root.topic != "" {
			p.err = fmt.Errorf("second root %s: a read model has one root table (%s)", table.Topic, n.root.topic)
		}
		n.root = p
	})
}

// Children declares a table whose rows each belong to one document: parent
// returns the root key of the row's document (its foreign key), or "" for
// none. apply sees all the current rows of the document's children, in the
// order of their primary keys; a child whose parent changes moves to the new
// document.
func Children[V, C any](table Table[C], parent func(C) string, apply func(doc *V, rows []C)) ReadModelPart[V] {
	return partFunc[V](func(n *ReadModelNode) {
		p := childPart{topic: table.Topic, rowType: typeName[C]()}
		dec, err := newRowDecoder[C]()
		switch {
		case err != nil:
			p.err = err
		case parent == nil || apply == nil:
			p.err = errors.New("children parent or apply function is nil")
		default:
			p.decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.parent = func(row any) string { return parent(row.(C)) }
			p.apply = func(doc any, raw []json.RawMessage) error {
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
		n.children = append(n.children, p)
	})
}

// Reference declares a table the root rows point at: key is the referenced
// row's own key, fk the key a root row references ("" for none). apply fills
// the document from the referenced row; it runs only while the row exists,
// and again whenever it changes, for every document that references it.
func Reference[V, R, F any](table Table[F], key func(F) string, fk func(root R) string, apply func(doc *V, row F)) ReadModelPart[V] {
	return partFunc[V](func(n *ReadModelNode) {
		p := refPart{topic: table.Topic, rowType: typeName[F]()}
		dec, err := newRowDecoder[F]()
		switch {
		case err != nil:
			p.err = err
		case key == nil || fk == nil || apply == nil:
			p.err = errors.New("reference key, foreign key or apply function is nil")
		default:
			p.decode = func(r change.Row) (any, error) { return dec.decode(r) }
			p.key = func(row any) string { return key(row.(F)) }
			p.fk = func(root any) string {
				r, ok := root.(R)
				if !ok {
					return ""
				}
				return fk(r)
			}
			p.apply = func(doc any, raw json.RawMessage) error {
				var row F
				if err := json.Unmarshal(raw, &row); err != nil {
					return fmt.Errorf("decode kept %s row: %w", table.Topic, err)
				}
				apply(doc.(*V), row)
				return nil
			}
		}
		n.refs = append(n.refs, p)
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
func ReadModel[V any](name string, parts ...ReadModelPart[V]) *ReadModelNode {
	n := &ReadModelNode{name: name, docType: typeName[V](), newDoc: func() any { return new(V) }}
	for _, p := range parts {
		if p == nil {
			n.err = errors.New("a part is nil")
			continue
		}
		p.addTo(n)
	}
	return n
}

func typeName[T any]() string { return fmt.Sprintf("%T", *new(T)) }

// Name returns the read model's name.
func (n *ReadModelNode) Name() string { return n.name }

// Input returns the root table's topic.
func (n *ReadModelNode) Input() string { return n.root.topic }

// Inputs returns every topic the read model reads: the root's, the
// children's and the references'.
func (n *ReadModelNode) Inputs() []string {
	in := []string{n.root.topic}
	for _, c := range n.children {
		in = append(in, c.topic)
	}
	for _, r := range n.refs {
		in = append(in, r.topic)
	}
	return in
}

func (n *ReadModelNode) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read model %s (documents as %s) keyed by %s (rows as %s)", n.name, n.docType, n.root.topic, n.root.rowType)
	for _, c := range n.children {
		fmt.Fprintf(&b, "\n    children %s (rows as %s)", c.topic, c.rowType)
	}
	for _, r := range n.refs {
		fmt.Fprintf(&b, "\n    reference %s (rows as %s)", r.topic, r.rowType)
	}
	return b.String()
}

var readModelName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

func (n *ReadModelNode) validate() error {
	var errs []error
	if n.err != nil {
		errs = append(errs, n.err)
	}
	if !readModelName.MatchString(n.name) {
		errs = append(errs, fmt.Errorf("name %q: use lower-case letters, digits and '-', starting with a letter", n.name))
	}
	if n.root.topic == "" && n.root.err == nil {
		errs = append(errs, errors.New("no Root table"))
	}
	if n.root.err != nil {
		errs = append(errs, fmt.Errorf("root %s: %w", n.root.topic, n.root.err))
	}
	for _, c := range n.children {
		if c.err != nil {
			errs = append(errs, fmt.Errorf("children %s: %w", c.topic, c.err))
		}
	}
	for _, r := range n.refs {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("reference %s: %w", r.topic, r.err))
		}
	}
	if in := n.Inputs(); len(slices.Compact(slices.Sorted(slices.Values(in)))) != len(in) {
		errs = append(errs, fmt.Errorf("reads a table twice (%s): each table is one part", strings.Join(in, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("read model %s: %w", n.name, err)
	}
	return nil
}

// HasReferences tells whether the read model has [Reference] tables.
func (n *ReadModelNode) HasReferences() bool { return len(n.refs) > 0 }

// IsChildren tells whether topic is one of the read model's [Children]
// tables.
func (n *ReadModelNode) IsChildren(topic string) bool {
	return slices.ContainsFunc(n.children, func(c childPart) bool { return c.topic == topic })
}
