package processors

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// Read models run as goka groups of their own, next to the topology's:
//
//	<group>-<name>-join   reads the children and reference tables (and the
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

// ReadModelTable returns the goka table that keeps model's documents when its
// topology runs under group (Config.Group, or the topology's name): its
// values are the read model's states as JSON (package views reads them,
// views.ReadModel).
func ReadModelTable[V any](group string, model *topologies.ReadModelNode[V]) goka.Table {
	return goka.Table(engine.TableTopic(engine.ReadModelGroup(group, model.Name())))
}

// JoinTable returns the goka table of model's join stage when its topology
// runs under group: who belongs to whom (views.Referrers reads it).
func JoinTable[V any](group string, model *topologies.ReadModelNode[V]) goka.Table {
	return goka.Table(engine.TableTopic(engine.JoinGroup(group, model.Name())))
}

// modelStateCodec is the codec of a read model's table: an
// engine.ModelState per root key, as JSON.
type modelStateCodec struct{}

func (modelStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (modelStateCodec) Decode(b []byte) (any, error) {
	var s engine.ModelState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode read model state: %w", err)
	}
	return &s, nil
}

// joinStateCodec is the codec of a read model's join table.
type joinStateCodec struct{}

func (joinStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (joinStateCodec) Decode(b []byte) (any, error) {
	var s engine.JoinState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode read model join state: %w", err)
	}
	return &s, nil
}

// jsonCodec encodes the messages of a read model's internal topics as JSON,
// and "decodes" them to their bytes: [jsonInput] decodes them in the
// callback, where a record that does not decode goes to the dead-letter
// topic instead of failing the partition.
type jsonCodec struct{}

func (jsonCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }
func (jsonCodec) Decode(b []byte) (any, error) { return b, nil }

// jsonInput returns the callback of an input of JSON messages of type M.
func jsonInput[M any](p *Processor, handle func(goka.Context, *M)) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		var m M
		if err := json.Unmarshal(raw, &m); err != nil {
			p.deadLetter(gctx, raw, nil, reasonMalformed, fmt.Errorf("decode %T: %w", m, err))
			return
		}
		handle(gctx, &m)
	}
}

// readModelGraphs defines the goka groups of node: the join stage's (nil
// when the read model has neither children nor references) and the model
// stage's.
func (p *Processor) readModelGraphs(node *engine.ReadModel) (join, model *goka.GroupGraph) {
	updates := goka.Stream(engine.UpdatesTopic(p.group, node.Name))
	modelEdges := []goka.Edge{
		goka.Input(goka.Stream(node.Root.Topic), raw, p.changeInput(true, p.readModelRoot(node, false))),
		goka.Loop(jsonCodec{}, jsonInput(p, p.readModelApply(node))),
		goka.Persist(modelStateCodec{}),
		p.deadLetterEdge(),
	}
	modelEdges = append(modelEdges, p.compactEdges(p.compactModel(node))...)
	gateIn := goka.Output(goka.Stream(engine.GateTopic(p.group, node.Name)), jsonCodec{})
	if node.Consistent {
		modelEdges = append(modelEdges, gateIn)
	}
	p.sweeps[engine.ReadModelGroup(p.group, node.Name)] = true
	inputs := node.Inputs()
	if len(inputs) == 1 {
		return nil, goka.DefineGroup(goka.Group(engine.ReadModelGroup(p.group, node.Name)), modelEdges...)
	}
	modelEdges = append(modelEdges, goka.Input(updates, jsonCodec{}, jsonInput(p, p.readModelApply(node))))
	var joinEdges []goka.Edge
	for i, topic := range inputs {
		switch {
		case i == 0 && node.HasReferences():
			// The model stage reads the root table too, and dead-letters
			// what cannot be read.
			joinEdges = append(joinEdges, goka.Input(goka.Stream(topic), raw, p.changeInput(false, p.readModelRoot(node, true))))
		case i > 0:
			joinEdges = append(joinEdges, goka.Input(goka.Stream(topic), raw, p.changeInput(true, p.readModelRoute(node, topic))))
		}
	}
	joinEdges = append(joinEdges,
		goka.Loop(jsonCodec{}, jsonInput(p, p.readModelJoin(node, updates))),
		goka.Output(updates, jsonCodec{}),
		goka.Persist(joinStateCodec{}),
		p.deadLetterEdge())
	joinEdges = append(joinEdges, p.compactEdges(p.compactJoin(node))...)
	if node.Consistent {
		joinEdges = append(joinEdges, gateIn)
	}
	p.sweeps[engine.JoinGroup(p.group, node.Name)] = true
	return goka.DefineGroup(goka.Group(engine.JoinGroup(p.group, node.Name)), joinEdges...),
		goka.DefineGroup(goka.Group(engine.ReadModelGroup(p.group, node.Name)), modelEdges...)
}

// readModelRoot sends a root row's change on within a stage's group: to
// its document (the model stage), or, with refs, what the row references
// (the join stage). A change the read model cannot route goes to the
// dead-letter topic from the model stage.
func (p *Processor) readModelRoot(node *engine.ReadModel, refs bool) func(goka.Context, changeRecord) {
	stage := "model"
	if refs {
		stage = "join"
	}
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		flow := p.entryFlow(gctx, node, stage, ev)
		defer flow.done("", nil)
		if isTruncate(ev) {
			if !refs {
				p.truncateUnapplicable(gctx, rec, "read model "+node.Name)
			}
			return
		}
		model, join, err := node.RouteRoot(ev)
		if err != nil {
			if !refs {
				p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable,
					fmt.Errorf("read model %s: change at %s of %s: %w", node.Name, ev.Position, ev.TableName(), err))
			}
			return
		}
		if refs {
			join.Msg.Credit = flow.split(1)[0]
			gctx.Loopback(join.Key, &join.Msg)
			return
		}
		model.Msg.Credit = flow.split(1)[0]
		gctx.Loopback(model.Key, &model.Msg)
	}
}

// readModelRoute sends a child or referenced row's change to the join
// stage; one it cannot route goes to the dead-letter topic.
func (p *Processor) readModelRoute(node *engine.ReadModel, topic string) func(goka.Context, changeRecord) {
	child := node.IsChildren(topic)
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		flow := p.entryFlow(gctx, node, "join", ev)
		defer flow.done("", nil)
		if isTruncate(ev) {
			p.truncateUnapplicable(gctx, rec, "read model "+node.Name)
			return
		}
		var routed engine.Keyed[engine.JoinMsg]
		var err error
		if child {
			routed, err = node.RouteChild(topic, engine.ChildKey(rec.key), ev)
		} else {
			routed, err = node.RouteRef(topic, ev)
		}
		if err != nil {
			p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable,
				fmt.Errorf("read model %s: change at %s of %s: %w", node.Name, ev.Position, ev.TableName(), err))
			return
		}
		routed.Msg.Credit = flow.split(1)[0]
		gctx.Loopback(routed.Key, &routed.Msg)
	}
}

func (p *Processor) readModelJoin(node *engine.ReadModel, updates goka.Stream) func(goka.Context, *engine.JoinMsg) {
	return func(gctx goka.Context, m *engine.JoinMsg) {
		flow := p.msgFlow(gctx, node, m.Credit)
		defer flow.done("", nil)
		st, _ := gctx.Value().(*engine.JoinState)
		next, loops, out, dup := node.Join(gctx.Key(), st, *m)
		if dup {
			return
		}
		credits := flow.split(len(loops) + len(out))
		for i, l := range loops {
			l.Msg.Credit = credits[i]
			gctx.Loopback(l.Key, &l.Msg)
		}
		for i, u := range out {
			u.Msg.Credit = credits[len(loops)+i]
			gctx.Emit(updates, u.Key, &u.Msg)
		}
		gctx.SetValue(next)
	}
}

func (p *Processor) readModelApply(node *engine.ReadModel) func(goka.Context, *engine.ModelMsg) {
	return func(gctx goka.Context, m *engine.ModelMsg) {
		flow := p.msgFlow(gctx, node, m.Credit)
		p.counters.change()
		st, _ := gctx.Value().(*engine.ModelState)
		next, dup, err := node.Apply(gctx.Key(), st, *m, time.Now().UnixMilli())
		if err != nil {
			p.fail(gctx, err)
		}
		if dup {
			// The gate applies the message to its own copy of the document
			// (once: it counts each path's credit once).
			p.counters.duplicate()
			flow.done(gctx.Key(), m)
			return
		}
		gctx.SetValue(next)
		flow.done(gctx.Key(), m)
	}
}
