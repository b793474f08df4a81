package views

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
)

// ReadModel returns a table of the documents of model, whose topology runs
// as the consumer group group (processors.Config.Group, by default the
// topology's name): its Get returns the document of a root key, and reports
// none while the root row is not there (not yet, or deleted). It connects to
// nothing until Run.
func ReadModel[V any](brokers []string, group string, model *topologies.ReadModelNode[V], opts ...TableOption) (*Table[V], error) {
	topic := goka.Table(engine.TableTopic(engine.ReadModelGroup(group, model.Name())))
	return NewTable[V](brokers, topic, append([]TableOption{WithCodec(documentCodec[V]{model})}, opts...)...)
}

// documentCodec decodes a read model's table value into its document; a
// value without one decodes to nil, which a Table reports as no value.
type documentCodec[V any] struct{ model *topologies.ReadModelNode[V] }

func (documentCodec[V]) Encode(any) ([]byte, error) {
	return nil, errors.New("a read model's table is written by its processor only")
}

func (c documentCodec[V]) Decode(b []byte) (any, error) {
	var st engine.ModelState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode read model %s state: %w", c.model.Name(), err)
	}
	if st.Document == nil {
		return nil, nil
	}
	return c.model.Document(st.Document)
}

// Referrers returns a table of which documents of model reference each row
// of table, one of model's Reference tables: its Get, given the key of a
// referenced row (as the Reference part's key function makes it), returns
// the root keys of the documents that reference it, in order (a customer's
// orders): none for a row that is not there, an empty list for a row no
// document references. Serve it with [FanOut]. It connects to nothing until
// Run.
func Referrers[V, F any](brokers []string, group string, model *topologies.ReadModelNode[V], table topologies.Table[F], opts ...TableOption) (*Table[[]string], error) {
	rm, _ := model.Engine().(*engine.ReadModel)
	if rm == nil || !slices.ContainsFunc(rm.Refs, func(r engine.RefPart) bool { return r.Topic == string(table.Topic) }) {
		return nil, fmt.Errorf("read model %s has no Reference table %s; pass the table of one of its Reference parts", model.Name(), table.Topic)
	}
	topic := goka.Table(engine.TableTopic(engine.JoinGroup(group, model.Name())))
	prefix := engine.ReferenceKey(string(table.Topic), "")
	return NewTable[[]string](brokers, topic,
		append([]TableOption{WithCodec(referrersCodec{}), withKeyPrefix(prefix)}, opts...)...)
}

// referrersCodec decodes a join stage's table value into the root keys that
// reference the row: an empty list while the row is there and no document
// references it, nil (no value) once it is gone.
type referrersCodec struct{}

func (referrersCodec) Encode(any) ([]byte, error) {
	return nil, errors.New("a read model's join table is written by its processor only")
}

func (referrersCodec) Decode(b []byte) (any, error) {
	var st engine.JoinState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode read model join state: %w", err)
	}
	if st.Members == nil {
		if st.Row == nil {
			return nil, nil
		}
		return []string{}, nil
	}
	return st.Members, nil
}

// Projection returns a table of the states of the projection p, whose
// topology runs as the consumer group group: its Get returns a key's
// state. It connects to nothing until Run.
func Projection[S any](brokers []string, group string, p *topologies.ProjectionNode[S], opts ...TableOption) (*Table[S], error) {
	topic := goka.Table(engine.TableTopic(engine.ProjectionGroup(group, p.Name())))
	return NewTable[S](brokers, topic, append([]TableOption{WithCodec(stateCodec[S]{p})}, opts...)...)
}

type stateCodec[S any] struct{ p *topologies.ProjectionNode[S] }

func (stateCodec[S]) Encode(any) ([]byte, error) {
	return nil, errors.New("a projection's table is written by its processor only")
}

func (c stateCodec[S]) Decode(b []byte) (any, error) { return c.p.State(b) }
