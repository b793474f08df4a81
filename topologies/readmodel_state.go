package topologies

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/cdcflow/cdcflow/change"
)

// A read model runs in two stages, each a goka group with a table of its
// own. The index stage reads every input, keeps who belongs to whom, and
// sends each root key the rows its document is made of (ModelMsg); the model
// stage keeps those rows per root key and builds the document from them.
// Both stages are pure functions of their state and message, here, so that
// the processor and a test harness run the same code.

// Message kinds.
const (
	kindRoot   = "root"   // a root row changed
	kindChild  = "child"  // a child row changed (index) or joined/left a document (model)
	kindRef    = "ref"    // a referenced row changed
	kindJoin   = "join"   // a root row started referencing a row
	kindLeave  = "leave"  // a root row stopped referencing a row
	keyRoot    = "root/"  // index keys: root/<root key>
	keyChild   = "child/" // child/<topic>/<child key>
	keyRefered = "ref/"   // ref/<topic>/<referenced key>
)

// IndexMsg is a message of the index stage, keyed by an index key.
type IndexMsg struct {
	Kind     string          `json:"kind"`
	Topic    string          `json:"topic,omitempty"`
	Position change.Position `json:"position"`
	// Row is the changed row (nil once deleted).
	Row json.RawMessage `json:"row,omitempty"`
	// Parent is a child row's root key.
	Parent string `json:"parent,omitempty"`
	// Child is a child row's key.
	Child string `json:"child,omitempty"`
	// FKs are a root row's references, one per Reference part in order
	// ("" for none); Member is the root key joining or leaving.
	FKs    []string `json:"fks,omitempty"`
	Member string   `json:"member,omitempty"`
}

// IndexState is what the index stage keeps per index key.
type IndexState struct {
	Position change.Position `json:"position"`
	// Parent is the root key a child row belongs to.
	Parent string `json:"parent,omitempty"`
	// Row and Members are a referenced row and the root keys referencing it.
	Row     json.RawMessage `json:"row,omitempty"`
	Members []string        `json:"members,omitempty"`
	// FKs are what a root row references, one per Reference part.
	FKs []string `json:"fks,omitempty"`
}

// ModelMsg is a message to the model stage, keyed by root key: a root row,
// or a child or referenced row of the document.
type ModelMsg struct {
	Kind     string          `json:"kind"`
	Topic    string          `json:"topic,omitempty"`
	Key      string          `json:"key,omitempty"` // the child's or referenced row's key
	Position change.Position `json:"position"`
	Row      json.RawMessage `json:"row,omitempty"` // nil: deleted, or no longer the document's
}

// Kept is a row a document is made of, with the position of the change that
// set it. A nil Row marks a row deleted (or moved away) at Position.
type Kept struct {
	Position change.Position `json:"position"`
	Row      json.RawMessage `json:"row,omitempty"`
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
	// states of one key (an external version for a search index). Replayed
	// and redelivered changes are duplicates and leave it as it is.
	Revision int64 `json:"revision"`
	// Document is the document as JSON, absent while the root row is not
	// there (never created, or deleted).
	Document json.RawMessage `json:"document,omitempty"`
}

// ReferenceKey is the key under which the index stage keeps the row key of
// the Reference table topic, with the root keys that reference it
// (IndexState.Members): a customer's orders, say.
func (n *ReadModelNode) ReferenceKey(topic, key string) string { return keyRefered + topic + "/" + key }

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
// (to the root key), and, when the read model has references, the index
// stage's (which keeps what the row references).
func (n *ReadModelNode) RouteRoot(ev *change.Event) (model Keyed[ModelMsg], index *Keyed[IndexMsg], err error) {
	after, id, err := decodeChange(n.root.decode, ev)
	if err != nil {
		return model, nil, err
	}
	key := n.root.key(id)
	row, err := marshalRow(after)
	if err != nil {
		return model, nil, err
	}
	model = Keyed[ModelMsg]{Key: key, Msg: ModelMsg{Kind: kindRoot, Position: ev.Position, Row: row}}
	if len(n.refs) == 0 {
		return model, nil, nil
	}
	fks := make([]string, len(n.refs))
	for i, r := range n.refs {
		if after != nil {
			fks[i] = r.fk(after)
		}
	}
	return model, &Keyed[IndexMsg]{Key: keyRoot + key, Msg: IndexMsg{Kind: kindRoot, Position: ev.Position, FKs: fks, Member: key}}, nil
}

// RouteChild turns a change of a Children table into the index stage's
// message; childKey names the row (from its primary key).
func (n *ReadModelNode) RouteChild(topic, childKey string, ev *change.Event) (Keyed[IndexMsg], error) {
	i := slices.IndexFunc(n.children, func(c childPart) bool { return c.topic == topic })
	if i < 0 {
		return Keyed[IndexMsg]{}, fmt.Errorf("read model %s has no children table %s", n.name, topic)
	}
	after, _, err := decodeChange(n.children[i].decode, ev)
	if err != nil {
		return Keyed[IndexMsg]{}, err
	}
	msg := IndexMsg{Kind: kindChild, Topic: topic, Child: childKey, Position: ev.Position}
	if after != nil {
		msg.Parent = n.children[i].parent(after)
		if msg.Row, err = marshalRow(after); err != nil {
			return Keyed[IndexMsg]{}, err
		}
	}
	return Keyed[IndexMsg]{Key: keyChild + topic + "/" + childKey, Msg: msg}, nil
}

// RouteRef turns a change of a Reference table into the index stage's
// message.
func (n *ReadModelNode) RouteRef(topic string, ev *change.Event) (Keyed[IndexMsg], error) {
	i := slices.IndexFunc(n.refs, func(r refPart) bool { return r.topic == topic })
	if i < 0 {
		return Keyed[IndexMsg]{}, fmt.Errorf("read model %s has no reference table %s", n.name, topic)
	}
	after, id, err := decodeChange(n.refs[i].decode, ev)
	if err != nil {
		return Keyed[IndexMsg]{}, err
	}
	row, err := marshalRow(after)
	if err != nil {
		return Keyed[IndexMsg]{}, err
	}
	key := n.refs[i].key(id)
	return Keyed[IndexMsg]{Key: keyRefered + topic + "/" + key, Msg: IndexMsg{Kind: kindRef, Topic: topic, Position: ev.Position, Row: row}}, nil
}

// Index runs the index stage: the next state of the index key key, the
// messages it sends on within the stage (loops) and to the model stage
// (updates). A change at or before the kept position is a duplicate and
// changes nothing.
func (n *ReadModelNode) Index(key string, st *IndexState, msg IndexMsg) (next *IndexState, loops []Keyed[IndexMsg], updates []Keyed[ModelMsg], dup bool) {
	if st == nil {
		st = &IndexState{}
	}
	next = &IndexState{Position: st.Position, Parent: st.Parent, Row: st.Row, Members: slices.Clone(st.Members), FKs: slices.Clone(st.FKs)}
	switch msg.Kind {
	case kindChild:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.Parent = msg.Position, msg.Parent
		childKey := msg.Child
		if st.Parent != "" && st.Parent != msg.Parent {
			updates = append(updates, Keyed[ModelMsg]{Key: st.Parent, Msg: ModelMsg{Kind: kindChild, Topic: msg.Topic, Key: childKey, Position: msg.Position}})
		}
		if msg.Parent != "" {
			updates = append(updates, Keyed[ModelMsg]{Key: msg.Parent, Msg: ModelMsg{Kind: kindChild, Topic: msg.Topic, Key: childKey, Position: msg.Position, Row: msg.Row}})
		}
	case kindRef:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.Row = msg.Position, msg.Row
		refKey := key[len(keyRefered)+len(msg.Topic)+1:]
		for _, m := range next.Members {
			updates = append(updates, Keyed[ModelMsg]{Key: m, Msg: ModelMsg{Kind: kindRef, Topic: msg.Topic, Key: refKey, Position: msg.Position, Row: msg.Row}})
		}
	case kindRoot:
		if msg.Position.Compare(st.Position) <= 0 {
			return st, nil, nil, true
		}
		next.Position, next.FKs = msg.Position, msg.FKs
		for i, r := range n.refs {
			var was string
			if i < len(st.FKs) {
				was = st.FKs[i]
			}
			now := msg.FKs[i]
			if was == now {
				continue
			}
			if was != "" {
				loops = append(loops, Keyed[IndexMsg]{Key: keyRefered + r.topic + "/" + was, Msg: IndexMsg{Kind: kindLeave, Topic: r.topic, Position: msg.Position, Member: msg.Member}})
			}
			if now != "" {
				loops = append(loops, Keyed[IndexMsg]{Key: keyRefered + r.topic + "/" + now, Msg: IndexMsg{Kind: kindJoin, Topic: r.topic, Position: msg.Position, Member: msg.Member}})
			}
		}
	case kindJoin:
		if i, found := slices.BinarySearch(next.Members, msg.Member); !found {
			next.Members = slices.Insert(next.Members, i, msg.Member)
		}
		// The joining document gets the row as it is now (again, if the join
		// is redelivered: the model stage ignores what it has).
		if st.Row != nil {
			refKey := key[len(keyRefered)+len(msg.Topic)+1:]
			updates = append(updates, Keyed[ModelMsg]{Key: msg.Member, Msg: ModelMsg{Kind: kindRef, Topic: msg.Topic, Key: refKey, Position: st.Position, Row: st.Row}})
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
// which changes nothing.
func (n *ReadModelNode) Apply(key string, st *ModelState, msg ModelMsg) (next *ModelState, dup bool, err error) {
	if st == nil {
		st = &ModelState{}
	}
	next = &ModelState{Root: st.Root, Children: cloneKept(st.Children), Refs: cloneKept(st.Refs), Version: st.Version, Revision: st.Revision + 1}
	kept := &Kept{Position: msg.Position, Row: msg.Row}
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
		return nil, false, fmt.Errorf("read model %s: unknown message kind %q for %s", n.name, msg.Kind, key)
	}
	if msg.Position.Compare(next.Version) > 0 {
		next.Version = msg.Position
	}
	if next.Document, err = n.build(next); err != nil {
		return nil, false, fmt.Errorf("read model %s: build document %s: %w", n.name, key, err)
	}
	return next, false, nil
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
func (n *ReadModelNode) build(st *ModelState) (json.RawMessage, error) {
	if st.Root == nil || st.Root.Row == nil {
		return nil, nil
	}
	root, err := n.root.kept(st.Root.Row)
	if err != nil {
		return nil, fmt.Errorf("decode kept root row: %w", err)
	}
	doc := n.newDoc()
	n.root.apply(doc, root)
	for _, c := range n.children {
		kept := st.Children[c.topic]
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
		if err := c.apply(doc, rows); err != nil {
			return nil, err
		}
	}
	for _, r := range n.refs {
		if ref := st.Refs[r.topic][r.fk(root)]; ref != nil && ref.Row != nil {
			if err := r.apply(doc, ref.Row); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(doc)
}

// Document decodes the document a ModelState holds; ok is false while there
// is none (the root row is not there).
func (n *ReadModelNode) Document(st *ModelState) (doc any, ok bool, err error) {
	if st == nil || st.Document == nil {
		return nil, false, nil
	}
	doc = n.newDoc()
	if err := json.Unmarshal(st.Document, doc); err != nil {
		return nil, false, fmt.Errorf("read model %s: decode document: %w", n.name, err)
	}
	return doc, true, nil
}
