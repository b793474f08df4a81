package processors

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// Read models run as goka groups of their own, next to the topology's:
//
//	<group>-<name>-index  reads the children and reference tables (and the
//	                      root table, for what it references), keeps who
//	                      belongs to whom in its table, and emits the rows
//	                      each document is made of to <group>-<name>-updates;
//	<group>-<name>        reads the root table and the updates, keeps the
//	                      rows and the document per root key in its table,
//	                      <group>-<name>-table.
//
// Every input is re-keyed through the group's loopback topic: the change
// topics are keyed by Avro-encoded primary keys, the tables by the read
// model's own keys, and goka's partitioner places both loopback and table
// keys alike.

// ReadModelGroup returns the goka group that keeps node's documents in its
// table (goka.GroupTable of it), for a topology run under group (the
// topology's name unless [Config.Group] says otherwise).
func ReadModelGroup(group string, node *topologies.ReadModelNode) goka.Group {
	return goka.Group(group + "-" + node.Name())
}

// ReadModelIndexGroup returns the goka group of node's index stage, whose
// table (values decoded by [ReadModelIndexCodec]) lists under
// node.ReferenceKey which roots reference a row.
func ReadModelIndexGroup(group string, node *topologies.ReadModelNode) goka.Group {
	return goka.Group(group + "-" + node.Name() + "-index")
}

func readModelUpdates(group string, node *topologies.ReadModelNode) goka.Stream {
	return goka.Stream(group + "-" + node.Name() + "-updates")
}

// ReadModelCodec is the goka codec of a read model's table values
// (*topologies.ModelState), for views over it.
type ReadModelCodec struct{}

func (ReadModelCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (ReadModelCodec) Decode(b []byte) (any, error) {
	var s topologies.ModelState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode read model state: %w", err)
	}
	return &s, nil
}

// ReadModelIndexCodec is the goka codec of a read model's index table values
// (*topologies.IndexState).
type ReadModelIndexCodec struct{}

func (ReadModelIndexCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (ReadModelIndexCodec) Decode(b []byte) (any, error) {
	var s topologies.IndexState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode read model index state: %w", err)
	}
	return &s, nil
}

// jsonCodec encodes messages of type M as JSON.
type jsonCodec[M any] struct{}

func (jsonCodec[M]) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[M]) Decode(b []byte) (any, error) {
	var m M
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %T: %w", m, err)
	}
	return &m, nil
}

// readModelGraphs defines the goka groups of node: the index stage's (nil
// when the read model has neither children nor references) and the model
// stage's.
func (p *Processor) readModelGraphs(group string, node *topologies.ReadModelNode) (index, model *goka.GroupGraph) {
	codec := serde.EventCodec{Decoder: p.cfg.Decoder}
	updates := readModelUpdates(group, node)
	modelEdges := []goka.Edge{
		goka.Input(goka.Stream(node.Input()), codec, p.readModelRoot(node, false)),
		goka.Loop(jsonCodec[topologies.ModelMsg]{}, p.readModelApply(node)),
		goka.Persist(ReadModelCodec{}),
	}
	inputs := node.Inputs()
	if len(inputs) == 1 {
		return nil, goka.DefineGroup(ReadModelGroup(group, node), modelEdges...)
	}
	modelEdges = append(modelEdges, goka.Input(updates, jsonCodec[topologies.ModelMsg]{}, p.readModelApply(node)))
	var indexEdges []goka.Edge
	for i, topic := range inputs {
		switch {
		case i == 0 && node.HasReferences():
			indexEdges = append(indexEdges, goka.Input(goka.Stream(topic), codec, p.readModelRoot(node, true)))
		case i > 0:
			indexEdges = append(indexEdges, goka.Input(goka.Stream(topic), codec, p.readModelRoute(node, topic)))
		}
	}
	indexEdges = append(indexEdges,
		goka.Loop(jsonCodec[topologies.IndexMsg]{}, p.readModelIndex(node, updates)),
		goka.Output(updates, jsonCodec[topologies.ModelMsg]{}),
		goka.Persist(ReadModelIndexCodec{}))
	return goka.DefineGroup(ReadModelIndexGroup(group, node), indexEdges...),
		goka.DefineGroup(ReadModelGroup(group, node), modelEdges...)
}

// readModelRoot sends a root row's change on within a stage's group: to
// its document (the model stage), or, with refs, what the row references
// (the index stage).
func (p *Processor) readModelRoot(node *topologies.ReadModelNode, refs bool) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		ev, ok := msg.(*change.Event)
		if !ok || ev == nil {
			return
		}
		model, index, err := node.RouteRoot(ev)
		if err != nil {
			fail(gctx, fmt.Errorf("read model %s: change at %s of %s: %w", node.Name(), ev.Position, ev.TableName(), err))
		}
		if refs {
			gctx.Loopback(index.Key, &index.Msg)
			return
		}
		gctx.Loopback(model.Key, &model.Msg)
	}
}

// readModelRoute sends a child or referenced row's change to the index stage.
func (p *Processor) readModelRoute(node *topologies.ReadModelNode, topic string) goka.ProcessCallback {
	child := node.IsChildren(topic)
	return func(gctx goka.Context, msg any) {
		ev, ok := msg.(*change.Event)
		if !ok || ev == nil {
			return
		}
		var routed topologies.Keyed[topologies.IndexMsg]
		var err error
		if child {
			var key string
			if key, err = p.keyText(gctx, topic); err == nil {
				routed, err = node.RouteChild(topic, key, ev)
			}
		} else {
			routed, err = node.RouteRef(topic, ev)
		}
		if err != nil {
			fail(gctx, fmt.Errorf("read model %s: change at %s of %s: %w", node.Name(), ev.Position, ev.TableName(), err))
		}
		gctx.Loopback(routed.Key, &routed.Msg)
	}
}

// keyText names a row by its primary key columns, in name order: id=7.
func (p *Processor) keyText(gctx goka.Context, topic string) (string, error) {
	cols, err := p.keyColumns(gctx.Context(), topic, gctx.Key())
	return strings.Join(cols, ","), err
}

func (p *Processor) readModelIndex(node *topologies.ReadModelNode, updates goka.Stream) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		m, ok := msg.(*topologies.IndexMsg)
		if !ok {
			return
		}
		st, _ := gctx.Value().(*topologies.IndexState)
		next, loops, out, dup := node.Index(gctx.Key(), st, *m)
		if dup {
			return
		}
		for _, l := range loops {
			gctx.Loopback(l.Key, &l.Msg)
		}
		for _, u := range out {
			gctx.Emit(updates, u.Key, &u.Msg)
		}
		gctx.SetValue(next)
	}
}

func (p *Processor) readModelApply(node *topologies.ReadModelNode) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		m, ok := msg.(*topologies.ModelMsg)
		if !ok {
			return
		}
		p.changes.Add(1)
		st, _ := gctx.Value().(*topologies.ModelState)
		next, dup, err := node.Apply(gctx.Key(), st, *m)
		if err != nil {
			fail(gctx, err)
		}
		if dup {
			p.duplicates.Add(1)
			return
		}
		gctx.SetValue(next)
	}
}
