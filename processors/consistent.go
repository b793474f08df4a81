package processors

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/lovoo/goka"
)

// A consistent read model (topologies.Consistent) runs two goka groups more
// than its stages (readmodel.go):
//
//	<group>-<name>-ends   reads the transaction topic and sends the gate
//	                      each transaction's END record: its changes per
//	                      table;
//	<group>-<name>-gate   reads the one-partition topic <group>-<name>-gate-in,
//	                      on which the stages send it the credit of the
//	                      messages they handled, with the messages the model
//	                      stage applied; keeps each transaction in flight, the
//	                      order of the END records and its own copy of the
//	                      documents in its table; once a transaction's credit
//	                      is all back and every transaction committed before
//	                      it was published, applies its messages to its copy
//	                      of the documents and publishes them, then a commit
//	                      marker, to the compacted one-partition topic
//	                      <group>-<name>-consistent (views.ConsistentReadModel
//	                      reads it).
//
// See engine.Credit for how the credit tells that a transaction is through.

// creditFlow is the credit of the message a stage handles: the stage passes
// it on to the messages it sends ([creditFlow.split]), or reports it to
// the gate when it sends none ([creditFlow.done]). A nil flow (a read model
// that is not consistent, a message without credit) does nothing.
type creditFlow struct {
	p      *Processor
	node   *engine.ReadModel
	gctx   goka.Context
	credit *engine.Credit
	passed bool
}

// entryFlow is the credit of the change ev, read by stage ("model" or
// "join") of node.
func (p *Processor) entryFlow(gctx goka.Context, node *engine.ReadModel, stage string, ev *change.Event) *creditFlow {
	if !node.Consistent || ev == nil {
		return nil
	}
	return &creditFlow{p: p, node: node, gctx: gctx, credit: engine.EntryCredit(stage, string(gctx.Topic()), ev)}
}

// msgFlow is the credit a read model message carries.
func (p *Processor) msgFlow(gctx goka.Context, node *engine.ReadModel, c *engine.Credit) *creditFlow {
	if !node.Consistent || c == nil {
		return nil
	}
	return &creditFlow{p: p, node: node, gctx: gctx, credit: c}
}

// split passes the credit on to k messages (none when k is 0: done reports
// it then).
func (f *creditFlow) split(k int) []*engine.Credit {
	if f == nil || k == 0 {
		return make([]*engine.Credit, k)
	}
	f.passed = true
	return f.credit.Split(k)
}

// done reports the credit to the gate unless it was passed on, with msg,
// the message the model stage applied to the document key, if it did.
func (f *creditFlow) done(key string, msg *engine.ModelMsg) {
	if f == nil || f.passed {
		return
	}
	f.passed = true
	f.gctx.Emit(goka.Stream(engine.GateTopic(f.p.group, f.node.Name)), f.credit.Tx, &engine.GateMsg{Credit: f.credit, Key: key, Msg: msg})
}

// gateGraphs defines the ends and gate groups of the consistent read model
// node.
func (p *Processor) gateGraphs(node *engine.ReadModel) (ends, gate *goka.GroupGraph, txTopic string, err error) {
	prefix, err := node.TopicPrefix()
	if err != nil {
		return nil, nil, "", err
	}
	txTopic = serde.TransactionTopic(prefix)
	readers := node.Readers(prefix)
	gateIn := goka.Stream(engine.GateTopic(p.group, node.Name))
	ends = goka.DefineGroup(goka.Group(engine.EndsGroup(p.group, node.Name)),
		goka.Input(goka.Stream(txTopic), raw, p.endsCallback(gateIn)),
		goka.Output(gateIn, jsonCodec{}),
		p.deadLetterEdge())
	gateCallback := jsonInput(p, p.gateCallback(node, readers))
	gate = goka.DefineGroup(goka.Group(engine.GateGroup(p.group, node.Name)),
		goka.Input(gateIn, jsonCodec{}, gateCallback),
		goka.Loop(jsonCodec{}, gateCallback),
		goka.Persist(gateStateCodec{}),
		goka.Output(goka.Stream(engine.ConsistentTopic(p.group, node.Name)), jsonCodec{}),
		p.deadLetterEdge())
	return ends, gate, txTopic, nil
}

// endsCallback sends the gate the END records of the transaction topic.
func (p *Processor) endsCallback(gateIn goka.Stream) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		value, _ := msg.([]byte)
		if value == nil {
			return
		}
		var rec serde.TransactionRecord
		err := p.whileRegistryUnavailable(gctx, func(ctx context.Context) (err error) {
			rec, err = p.cfg.Decoder.DecodeTransaction(ctx, value)
			return err
		})
		if err != nil {
			p.deadLetter(gctx, value, nil, reasonMalformed, fmt.Errorf("decode transaction record: %w", err))
			return
		}
		if rec.Status != serde.TransactionEnd {
			return
		}
		xid, lsn, _ := strings.Cut(rec.ID, ":")
		endLSN, err := strconv.ParseUint(lsn, 10, 64) // Debezium writes the LSN in decimal
		if xid == "" || err != nil {
			p.deadLetter(gctx, value, nil, reasonMalformed, fmt.Errorf("transaction END record id %q is not <txId>:<LSN>", rec.ID))
			return
		}
		end := &engine.GateEnd{Counts: map[string]int64{}, LSN: change.LSN(endLSN)}
		for _, dc := range rec.DataCollections {
			end.Counts[dc.DataCollection] += dc.EventCount
		}
		gctx.Emit(gateIn, engine.GateSeqKey, &engine.GateMsg{End: end, Tx: engine.TransactionKey(xid)})
	}
}

// gateCallback runs the gate (see engine.GateMsg): it counts each
// transaction's credit back, and once a transaction is complete and every
// transaction committed before it was published, applies its messages to
// the gate's copies of the documents and publishes the documents, then a
// commit marker. The gate's group has one partition: its loopback keeps the
// order of what it sends itself, so a transaction's documents and marker go
// out one after the other, and transactions in the order they committed.
func (p *Processor) gateCallback(node *engine.ReadModel, readers map[string]int) func(goka.Context, *engine.GateMsg) {
	out := goka.Stream(engine.ConsistentTopic(p.group, node.Name))
	return func(gctx goka.Context, m *engine.GateMsg) {
		key := gctx.Key()
		doc, isDoc := strings.CutPrefix(key, engine.GateDocPrefix)
		switch {
		case key == engine.GateSeqKey:
			seq := gateTableValue[engine.GateSeq](p, gctx)
			if seq == nil {
				seq = &engine.GateSeq{}
			}
			if n, ok := seq.Number(m.End); ok {
				gctx.Loopback(m.Tx, &engine.GateMsg{End: m.End, Seq: n})
				gctx.SetValue(seq)
			}
		case key == engine.GateOrderKey:
			order := gateTableValue[engine.GateOrder](p, gctx)
			if order == nil {
				order = &engine.GateOrder{}
			}
			for _, seq := range order.Complete(m.Seq) {
				gctx.Loopback(engine.GateNumberKey(seq), &engine.GateMsg{Release: true})
			}
			gctx.SetValue(order)
		case strings.HasPrefix(key, engine.GateNumberPrefix):
			// A complete transaction's name, kept under its number until
			// its turn. The transaction sends it here before it tells the
			// order, on the one loopback partition, so it is here before
			// the order releases it.
			switch {
			case m.Complete != "":
				gctx.SetValue(m)
			case m.Release:
				if kept := gateTableValue[engine.GateMsg](p, gctx); kept != nil {
					gctx.Loopback(kept.Complete, &engine.GateMsg{Release: true})
				}
				gctx.Delete()
			}
		case key == engine.GateCommitKey:
			gctx.Emit(out, engine.CommitKey, &engine.Published{Tx: m.Tx, Docs: m.Docs})
		case isDoc:
			if m.Msg == nil {
				return
			}
			st := gateTableValue[engine.ModelState](p, gctx)
			next, dup, err := node.Apply(doc, st, *m.Msg, time.Now().UnixMilli())
			if err != nil {
				p.fail(gctx, fmt.Errorf("read model %s gate: %w", node.Name, err))
			}
			if !dup {
				gctx.SetValue(next)
				st = next
			}
			if st == nil {
				return
			}
			state, err := json.Marshal(st)
			if err != nil {
				p.fail(gctx, fmt.Errorf("read model %s gate: encode the document of %s: %w", node.Name, key, err))
			}
			gctx.Emit(out, doc, &engine.Published{Tx: m.Tx, Version: st.Version, State: state})
		case m.Release:
			if st := gateTableValue[engine.GateState](p, gctx); st != nil {
				p.publish(gctx, st)
			}
			gctx.Delete()
		default: // a transaction's credit, or its END record
			next, complete, err := engine.Gate(gateTableValue[engine.GateState](p, gctx), *m, readers)
			if err != nil {
				raw, _ := json.Marshal(m)
				p.deadLetter(gctx, raw, nil, reasonMalformed, fmt.Errorf("read model %s gate: %w", node.Name, err))
				return
			}
			if complete && next.Units > next.Expected {
				p.cfg.Logger.Warn("a consistent read model's transaction got more credit back than its changes started with: a redelivered message took another path; the transaction is published",
					"topology", p.topo.Name, "read_model", node.Name, "transaction", key)
			}
			switch {
			case complete && !strings.HasPrefix(key, engine.GateTxPrefix):
				// A change outside any transaction (a snapshot read) goes
				// out as soon as it is through.
				p.publish(gctx, next)
				gctx.Delete()
			case complete:
				gctx.Loopback(engine.GateNumberKey(next.Seq), &engine.GateMsg{Complete: key})
				gctx.Loopback(engine.GateOrderKey, &engine.GateMsg{Seq: next.Seq})
				gctx.SetValue(next)
			default:
				gctx.SetValue(next)
			}
		}
	}
}

// publish sends the messages of the complete transaction st to its
// documents, then the transaction's commit marker.
func (p *Processor) publish(gctx goka.Context, st *engine.GateState) {
	docs := st.Documents()
	if docs == 0 {
		return
	}
	for _, a := range st.Sorted() {
		gctx.Loopback(engine.GateDocKey(a.Key), &engine.GateMsg{Tx: gctx.Key(), Msg: &a.Msg})
	}
	gctx.Loopback(engine.GateCommitKey, &engine.GateMsg{Tx: gctx.Key(), Docs: docs})
}

// gateStateCodec is the codec of a gate's table, whose values are of a kind
// per key (see engine.GateMsg: a transaction's GateState, the GateSeq, the
// GateOrder, a waiting transaction's GateMsg, a document's ModelState):
// each is decoded in the callback, by its key.
type gateStateCodec struct{}

func (gateStateCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (gateStateCodec) Decode(b []byte) (any, error) { return gateValue(b), nil }

// gateValue is a gate table value not yet decoded: the callback decodes it
// as its key says.
type gateValue []byte

// gateTableValue decodes the gate table's value of the message's key as a
// T (nil: none). The gate wrote it: a value that does not decode stops the
// processor.
func gateTableValue[T any](p *Processor, gctx goka.Context) *T {
	raw, _ := gctx.Value().(gateValue)
	if raw == nil {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		p.fail(gctx, fmt.Errorf("decode the gate's value of %s as %T: %w", gctx.Key(), v, err))
	}
	return v
}
