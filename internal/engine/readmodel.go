package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// ReadModel keeps one document per row of a root table, joined with the rows
// of child tables that point at it and with the rows of the tables it
// references: a CQRS read model such as an order summary (the order, its
// line items' total, its customer's name).
//
// A read model runs in two stages, each a goka group with a table of its
// own. The join stage ([JoinGroup]) reads the children and reference tables
// (and the root table, for what it references), keeps who belongs to whom,
// and sends each root key the rows its document is made of ([ModelMsg]); the
// model stage ([ReadModelGroup]) keeps those rows per root key and builds the
// document from them. Both stages are pure functions of their state and
// message ([ReadModel.Join], [ReadModel.Apply]), so that the processor and
// the test harness run the same code.
type ReadModel struct {
	Name     string
	Root     RootPart
	Children []ChildPart
	Refs     []RefPart
	DocType  string
	// NewDoc returns a new *V, V the document type.
	NewDoc func() any
	// Consistent publishes each source transaction's documents together,
	// once all of the transaction went through (see Credit).
	Consistent bool
	Errs       []error
}

// RootPart is the table a read model keeps one document per row of.
type RootPart struct {
	Topic string
	// Debezium marks a Topic another Debezium connector writes.
	Debezium bool
	RowType  string
	Decode   func(change.Row) (any, error)
	// Key names a row's document; Apply fills the document from the row;
	// Kept decodes a kept row.
	Key   func(row any) string
	Apply func(doc, row any)
	Kept  func(json.RawMessage) (any, error)
	Err   error
}

// ChildPart is a table whose rows belong to one root row each (line items to
// their order).
type ChildPart struct {
	Topic string
	// Debezium marks a Topic another Debezium connector writes.
	Debezium bool
	RowType  string
	Decode   func(change.Row) (any, error)
	// Parent is the root key of a row's document ("" for none); Apply
	// fills the document from its kept child rows.
	Parent func(row any) string
	Apply  func(doc any, rows []json.RawMessage) error
	Err    error
}

// RefPart is a table the root rows reference (an order's customer).
type RefPart struct {
	Topic string
	// Debezium marks a Topic another Debezium connector writes.
	Debezium bool
	RowType  string
	Decode   func(change.Row) (any, error)
	// Key is a referenced row's own key, FK the key a root row references
	// ("" for none); Apply fills the document from the kept referenced row.
	Key   func(row any) string
	FK    func(root any) string
	Apply func(doc any, row json.RawMessage) error
	Err   error
}

// Inputs returns every topic the read model reads: the root's, the
// children's and the references'.
func (n *ReadModel) Inputs() []string {
	in := []string{n.Root.Topic}
	for _, c := range n.Children {
		in = append(in, c.Topic)
	}
	for _, r := range n.Refs {
		in = append(in, r.Topic)
	}
	return in
}

// Describe implements Node.
func (n *ReadModel) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "read model %s (documents as %s) keyed by %s (rows as %s)", n.Name, n.DocType, n.Root.Topic, n.Root.RowType)
	for _, c := range n.Children {
		fmt.Fprintf(&b, "\n    children %s (rows as %s)", c.Topic, c.RowType)
	}
	for _, r := range n.Refs {
		fmt.Fprintf(&b, "\n    reference %s (rows as %s)", r.Topic, r.RowType)
	}
	if n.Consistent {
		b.WriteString("\n    transaction-consistent: each source transaction's documents published together")
	}
	return b.String()
}

// Validate implements Node.
func (n *ReadModel) Validate() error {
	errs := slices.Clone(n.Errs)
	if !Name.MatchString(n.Name) {
		errs = append(errs, fmt.Errorf("name %q: use lower-case letters, digits and '-', starting with a letter", n.Name))
	}
	if n.Root.Topic == "" && n.Root.Err == nil {
		errs = append(errs, errors.New("no Root table"))
	}
	if n.Root.Err != nil {
		errs = append(errs, fmt.Errorf("root %s: %w", n.Root.Topic, n.Root.Err))
	}
	for _, c := range n.Children {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("children %s: %w", c.Topic, c.Err))
		}
	}
	for _, r := range n.Refs {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("reference %s: %w", r.Topic, r.Err))
		}
	}
	if in := n.Inputs(); len(slices.Compact(slices.Sorted(slices.Values(in)))) != len(in) {
		errs = append(errs, fmt.Errorf("reads a table twice (%s): each table is one part", strings.Join(in, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("read model %s: %w", n.Name, err)
	}
	return nil
}

// Run implements Node.
func (n *ReadModel) Run(rt Runtime) error { return rt.ReadModel(n) }

// HasReferences tells whether the read model has reference tables.
func (n *ReadModel) HasReferences() bool { return len(n.Refs) > 0 }

// IsChildren tells whether topic is one of the read model's children tables.
func (n *ReadModel) IsChildren(topic string) bool {
	return slices.ContainsFunc(n.Children, func(c ChildPart) bool { return c.Topic == topic })
}

// The kinds of the stages' messages.
const (
	kindRoot   = "root"   // a root row changed
	kindChild  = "child"  // a child row changed (join) or joined/left a document (model)
	kindRef    = "ref"    // a referenced row changed
	kindJoin   = "join"   // a root row started referencing a row
	kindLeave  = "leave"  // a root row stopped referencing a row
	keyRoot    = "root/"  // join keys: root/<root key>
	keyChild   = "child/" // child/<topic>/<child key>
	keyRefered = "ref/"   // ref/<topic>/<referenced key>
)

// JoinMsg is a message of the join stage, keyed by a join key.
type JoinMsg struct {
	Kind     string          `json:"kind"`
	Topic    string          `json:"topic,omitempty"`
	Position change.Position `json:"position"`
	// At is the source commit time of the change, in Unix milliseconds
	// (0 when unknown): how old a marker it leaves is.
	At int64 `json:"at,omitempty"`
	// Row is the changed row (nil once deleted).
	Row json.RawMessage `json:"row,omitempty"`
	// Deleted tells that the root or child row was deleted.
	Deleted bool `json:"deleted,omitempty"`
	// Parent is a child row's root key.
	Parent string `json:"parent,omitempty"`
	// Child is a child row's key.
	Child string `json:"child,omitempty"`
	// FKs are a root row's references, one per Reference part in order
	// ("" for none); Member is the root key joining or leaving.
	FKs    []string `json:"fks,omitempty"`
	Member string   `json:"member,omitempty"`
	// Credit is the message's credit in a consistent read model.
	Credit *Credit `json:"credit,omitempty"`
}

// JoinState is what the join stage keeps per join key.
type JoinState struct {
	Position change.Position `json:"position"`
	// Parent is the root key a child row belongs to.
	Parent string `json:"parent,omitempty"`
	// Row and Members are a referenced row and the root keys referencing it.
	Row     json.RawMessage `json:"row,omitempty"`
	Members []string        `json:"members,omitempty"`
	// FKs are what a root row references, one per Reference part.
	FKs []string `json:"fks,omitempty"`
	// Deleted marks a deleted row (a root, child or referenced one), kept
	// so that an older change of it delivered later changes nothing; At is
	// the source commit time of its delete (Unix ms), after which
	// [ReadModel.CompactJoin] may drop the marker.
	Deleted bool  `json:"deleted,omitempty"`
	At      int64 `json:"at,omitempty"`
}

// ModelMsg is a message to the model stage, keyed by root key: a root row,
// or a child or referenced row of the document.
type ModelMsg struct {
	Kind     string          `json:"kind"`
	Topic    string          `json:"topic,omitempty"`
	Key      string          `json:"key,omitempty"` // the child's or referenced row's key
	Position change.Position `json:"position"`
	At       int64           `json:"at,omitempty"`     // the source commit time, Unix ms (0: unknown)
	Row      json.RawMessage `json:"row,omitempty"`    // nil: deleted, or no longer the document's
	Credit   *Credit         `json:"credit,omitempty"` // in a consistent read model
}

// Kept is a row a document is made of, with the position of the change that
// set it. A nil Row marks a row deleted (or moved away) at Position, At
// being the source commit time of that change (Unix ms).
type Kept struct {
	Position change.Position `json:"position"`
	Row      json.RawMessage `json:"row,omitempty"`
	At       int64           `json:"at,omitempty"`
}

// ModelState is what the model stage keeps per root key: the rows the
// document is made of, and the document built from them.
type ModelState struct {
	Root     *Kept                       `json:"root,omitempty"`
	Children map[string]map[string]*Kept `json:"children,omitempty"` // topic → child key → row
	Refs     map[string]map[string]*Kept `json:"refs,omitempty"`     // topic → referenced key → row
	// Version is the latest position of the rows the document is made of.
	// It does not grow when a change brings an older row (an order joins a
	// customer whose row last changed long ago): use Revision to version
	// the document.
	Version change.Position `json:"version"`
	// Revision counts the changes applied to the document's rows: it grows
	// by one with every change that is not a duplicate, so it orders the
	// states of one key. Replayed and redelivered changes are duplicates and
	// leave it as it is. Sinks version a state by [ModelState.SinkVersion].
	Revision int64 `json:"revision"`
	// Generation is when the table first kept the key: the runtime's clock
	// in Unix milliseconds as the key's first change was applied (0 for
	// states kept before generations existed, and in the test harness). A
	// rebuilt read model (a new table) starts a later generation.
	Generation int64 `json:"generation,omitempty"`
	// Document is the document as JSON, absent while the root row is not
	// there (never created, or deleted).
	Document json.RawMessage `json:"document,omitempty"`
}

// generationShift leaves the low bits of a sink version to the revision: a
// generation is a millisecond, and a document would need 2^20 changes in
// one millisecond of the clock for a state to reach the next generation's
// first version.
const generationShift = 20

// SinkVersion is the version sinks write the state at (a search index's
// external version, a PostgreSQL row's cdc_version): Generation << 20 plus
// Revision. It grows with every change applied to the key, so a replay or a
// redelivery, which applies none, writes nothing; and a rebuilt read model,
// whose generation is later, writes over what the table it replaces left
// in the same sink, instead of being refused as older (a revision alone
// starts again at 1).
func (s *ModelState) SinkVersion() int64 { return s.Generation<<generationShift + s.Revision }

// ReferenceKey is the key under which the join stage keeps the row key of
// the reference table topic, with the root keys that reference it
// (JoinState.Members): a customer's orders, say.
func ReferenceKey(topic, key string) string { return keyRefered + topic + "/" + key }

// Keyed is a message and the key it goes to.
type Keyed[M any] struct {
	Key string
	Msg M
}

func marshalRow(row any) (json.RawMessage, error) {
	if row == nil {
		return nil, nil
	}
	return json.Marshal(row)
}

// decodeChange decodes a change's row as of after it (nil for a delete) and
// the row that identifies it (After, else the key-only Before of a delete).
func decodeChange(decode func(change.Row) (any, error), ev *change.Event) (after, id any, err error) {
	if ev.After != nil {
		after, err = decode(ev.After)
		return after, after, err
	}
	if ev.Before == nil {
		return nil, nil, fmt.Errorf("change at %s of %s has neither before nor after", ev.Position, ev.TableName())
	}
	id, err = decode(ev.Before)
	return nil, id, err
}

// RouteRoot turns a change of the root table into the model stage's message
// (to the root key), and, when the read model has references, the join
// stage's (which keeps what the row references).
func (n *ReadModel) RouteRoot(ev *change.Event) (model Keyed[ModelMsg], join *Keyed[JoinMsg], err error) {
	after, id, err := decodeChange(n.Root.Decode, ev)
	if err != nil {
		return model, nil, err
	}
	key := n.Root.Key(id)
	row, err := marshalRow(after)
	if err != nil {
		return model, nil, err
	}
	model = Keyed[ModelMsg]{Key: key, Msg: ModelMsg{Kind: kindRoot, Position: ev.Position, At: ev.Source.TsMs, Row: row}}
	if len(n.Refs) == 0 {
		return model, nil, nil
	}
	fks := make([]string, len(n.Refs))
	for i, r := range n.Refs {
		if after != nil {
			fks[i] = r.FK(after)
		}
	}
	return model, &Keyed[JoinMsg]{Key: keyRoot + key, Msg: JoinMsg{Kind: kindRoot, Position: ev.Position, At: ev.Source.TsMs,
		FKs: fks, Member: key, Deleted: after == nil}}, nil
}

// RouteChild turns a change of a Children table into the join stage's
// message; childKey names the row (from its primary key).
func (n *ReadModel) RouteChild(topic, childKey string, ev *change.Event) (Keyed[JoinMsg], error) {
	i := slices.IndexFunc(n.Children, func(c ChildPart) bool { return c.Topic == topic })
	if i < 0 {
		return Keyed[JoinMsg]{}, fmt.Errorf("read model %s has no children table %s", n.Name, topic)
	}
	after, _, err := decodeChange(n.Children[i].Decode, ev)
	if err != nil {
		return Keyed[JoinMsg]{}, err
	}
	msg := JoinMsg{Kind: kindChild, Topic: topic, Child: childKey, Position: ev.Position, At: ev.Source.TsMs, Deleted: after == nil}
	if after != nil {
		msg.Parent = n.Children[i].Parent(after)
		if msg.Row, err = marshalRow(after); err != nil {
			return Keyed[JoinMsg]{}, err
		}
	}
	return Keyed[JoinMsg]{Key: keyChild + topic + "/" + childKey, Msg: msg}, nil
}

// RouteRef turns a change of a Reference table into the join stage's
// message.
func (n *ReadModel) RouteRef(topic string, ev *change.Event) (Keyed[JoinMsg], error) {
	i := slices.IndexFunc(n.Refs, func(r RefPart) bool { return r.Topic == topic })
	if i < 0 {
		return Keyed[JoinMsg]{}, fmt.Errorf("read model %s has no reference table %s", n.Name, topic)
	}
	after, id, err := decodeChange(n.Refs[i].Decode, ev)
	if err != nil {
		return Keyed[JoinMsg]{}, err
	}
	row, err := marshalRow(after)
	if err != nil {
		return Keyed[JoinMsg]{}, err
	}
	key := n.Refs[i].Key(id)
	return Keyed[JoinMsg]{Key: keyRefered + topic + "/" + key, Msg: JoinMsg{Kind: kindRef, Topic: topic, Position: ev.Position, At: ev.Source.TsMs, Row: row, Deleted: row == nil}}, nil
}

// Join runs the join stage: the next state of the join key key, the
// messages it sends on within the stage (loops) and to the model stage
// (updates). A change at or before the kept position is a duplicate and
// changes nothing.
func (n *ReadModel) Join(key string, st *JoinState, msg JoinMsg) (next *JoinState, loops []Keyed[JoinMsg], updates []Keyed[ModelMsg], dup bool) {
	if st == nil {
		st = &JoinState{}
	}
	next = &JoinState{Position: st.Position, Parent: st.Parent, Row: st.Row, Members: slices.Clone(st.Members), FKs: slices.Clone(st.FKs),
		Deleted: st.Deleted, At: st.At}
	switch msg.Kind {
	case kindChild:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.Parent, next.Deleted, next.At = msg.Position, msg.Parent, msg.Deleted, markerTime(msg.Deleted, msg.At)
		childKey := msg.Child
		if st.Parent != "" && st.Parent != msg.Parent {
			updates = append(updates, Keyed[ModelMsg]{Key: st.Parent, Msg: ModelMsg{Kind: kindChild, Topic: msg.Topic, Key: childKey, Position: msg.Position, At: msg.At}})
		}
		if msg.Parent != "" {
			updates = append(updates, Keyed[ModelMsg]{Key: msg.Parent, Msg: ModelMsg{Kind: kindChild, Topic: msg.Topic, Key: childKey, Position: msg.Position, At: msg.At, Row: msg.Row}})
		}
	case kindRef:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.Row, next.Deleted, next.At = msg.Position, msg.Row, msg.Deleted, markerTime(msg.Deleted, msg.At)
		refKey := key[len(keyRefered)+len(msg.Topic)+1:]
		for _, m := range next.Members {
			updates = append(updates, Keyed[ModelMsg]{Key: m, Msg: ModelMsg{Kind: kindRef, Topic: msg.Topic, Key: refKey, Position: msg.Position, At: msg.At, Row: msg.Row}})
		}
	case kindRoot:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.FKs, next.Deleted, next.At = msg.Position, msg.FKs, msg.Deleted, markerTime(msg.Deleted, msg.At)
		for i, r := range n.Refs {
			var was string
			if i < len(st.FKs) {
				was = st.FKs[i]
			}
			now := msg.FKs[i]
			if was == now {
				continue
			}
			if was != "" {
				loops = append(loops, Keyed[JoinMsg]{Key: keyRefered + r.Topic + "/" + was, Msg: JoinMsg{Kind: kindLeave, Topic: r.Topic, Position: msg.Position, Member: msg.Member}})
			}
			if now != "" {
				loops = append(loops, Keyed[JoinMsg]{Key: keyRefered + r.Topic + "/" + now, Msg: JoinMsg{Kind: kindJoin, Topic: r.Topic, Position: msg.Position, Member: msg.Member}})
			}
		}
	case kindJoin:
		if i, found := slices.BinarySearch(next.Members, msg.Member); !found {
			next.Members = slices.Insert(next.Members, i, msg.Member)
		}
		// The joining document gets the row as it is now (again, if the join
		// is redelivered: the model stage ignores what it has), or, once it
		// was deleted, the delete: the document may still keep the row from
		// when it referenced it before.
		if st.Row != nil || !st.Position.IsZero() {
			refKey := key[len(keyRefered)+len(msg.Topic)+1:]
			updates = append(updates, Keyed[ModelMsg]{Key: msg.Member, Msg: ModelMsg{Kind: kindRef, Topic: msg.Topic, Key: refKey, Position: st.Position, At: st.At, Row: st.Row}})
		}
	case kindLeave:
		if i, found := slices.BinarySearch(next.Members, msg.Member); found {
			next.Members = slices.Delete(next.Members, i, i+1)
		}
	}
	return next, loops, updates, false
}

// Apply runs the model stage: the next state of root key key after msg, and
// whether msg was a duplicate (at or before the position kept for its row),
// which changes nothing. A key the table keeps nothing for yet (st nil)
// starts generation gen: the runtime's clock, in Unix milliseconds.
func (n *ReadModel) Apply(key string, st *ModelState, msg ModelMsg, gen int64) (next *ModelState, dup bool, err error) {
	if st == nil {
		st = &ModelState{Generation: gen}
	}
	next = &ModelState{Root: st.Root, Children: cloneKept(st.Children), Refs: cloneKept(st.Refs), Version: st.Version,
		Revision: st.Revision + 1, Generation: st.Generation}
	kept := &Kept{Position: msg.Position, Row: msg.Row, At: markerTime(msg.Row == nil, msg.At)}
	switch msg.Kind {
	case kindRoot:
		if st.Root != nil && msg.Position.Compare(st.Root.Position) <= 0 {
			return st, true, nil
		}
		next.Root = kept
	case kindChild, kindRef:
		parts := &next.Children
		if msg.Kind == kindRef {
			parts = &next.Refs
		}
		if old := (*parts)[msg.Topic][msg.Key]; old != nil && msg.Position.Compare(old.Position) <= 0 {
			return st, true, nil
		}
		if *parts == nil {
			*parts = map[string]map[string]*Kept{}
		}
		if (*parts)[msg.Topic] == nil {
			(*parts)[msg.Topic] = map[string]*Kept{}
		}
		(*parts)[msg.Topic][msg.Key] = kept
	default:
		return nil, false, fmt.Errorf("read model %s: unknown message kind %q for %s", n.Name, msg.Kind, key)
	}
	if msg.Position.Compare(next.Version) > 0 {
		next.Version = msg.Position
	}
	if next.Document, err = n.build(next); err != nil {
		return nil, false, fmt.Errorf("read model %s: build document %s: %w", n.Name, key, err)
	}
	return next, false, nil
}

// markerTime is the time a marker keeps: at when the row is gone, else 0
// (a live row needs none).
func markerTime(gone bool, at int64) int64 {
	if gone {
		return at
	}
	return 0
}

func cloneKept(m map[string]map[string]*Kept) map[string]map[string]*Kept {
	if m == nil {
		return nil
	}
	c := make(map[string]map[string]*Kept, len(m))
	for k, v := range m {
		c[k] = make(map[string]*Kept, len(v))
		for kk, vv := range v {
			c[k][kk] = vv
		}
	}
	return c
}

// build makes the document from the kept rows: the root's, its children's in
// key order and the referenced ones.
func (n *ReadModel) build(st *ModelState) (json.RawMessage, error) {
	if st.Root == nil || st.Root.Row == nil {
		return nil, nil
	}
	root, err := n.Root.Kept(st.Root.Row)
	if err != nil {
		return nil, fmt.Errorf("decode kept root row: %w", err)
	}
	doc := n.NewDoc()
	n.Root.Apply(doc, root)
	for _, c := range n.Children {
		kept := st.Children[c.Topic]
		keys := make([]string, 0, len(kept))
		for k, v := range kept {
			if v.Row != nil {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		rows := make([]json.RawMessage, len(keys))
		for i, k := range keys {
			rows[i] = kept[k].Row
		}
		if err := c.Apply(doc, rows); err != nil {
			return nil, err
		}
	}
	for _, r := range n.Refs {
		if ref := st.Refs[r.Topic][r.FK(root)]; ref != nil && ref.Row != nil {
			if err := r.Apply(doc, ref.Row); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(doc)
}

// Document decodes the document a ModelState holds; ok is false while there
// is none (the root row is not there).
func (n *ReadModel) Document(st *ModelState) (doc any, ok bool, err error) {
	if st == nil || st.Document == nil {
		return nil, false, nil
	}
	doc = n.NewDoc()
	if err := json.Unmarshal(st.Document, doc); err != nil {
		return nil, false, fmt.Errorf("read model %s: decode document: %w", n.Name, err)
	}
	return doc, true, nil
}
