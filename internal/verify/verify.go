// Package verify compares what a topology's sinks hold with what its nodes
// make of the source tables' current rows, key by key: the Redis metrics of
// a Metrics node (each series' buckets, and each row's recorded
// contribution), the documents of a read model's goka table, and the
// documents of a search index (of rows, or of a read model). Domain events
// and projections cannot be recomputed from current rows: they follow from
// the history of changes (a status that went from new to paid to shipped is
// one row now), so they are reported as not verifiable.
//
// The comparison is exact only while nothing is in flight: rows committed
// after the source was read, or changes the processors have not applied
// yet, show as differences. Run it when the processors have caught up.
package verify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/redis/go-redis/v9"
)

// Source reads the current rows of the table a change topic carries, with
// their key columns.
type Source interface {
	Rows(ctx context.Context, topic string) ([]engine.CurrentRow, error)
}

// Sinks are where the nodes keep what they make. A topology's nodes need
// those engine.SinksOf names, and Table for read models.
type Sinks struct {
	Redis       redis.UniversalClient
	RedisPrefix string
	// Elasticsearch holds the search indexes.
	Elasticsearch *elasticsearch.Client
	// Table reads the latest value of every key of a goka table's topic;
	// its error wraps inspect.ErrNoTopic when the topic does not exist.
	Table func(ctx context.Context, topic string) (map[string][]byte, error)
}

// Difference is a key at which a sink holds something else than the
// source's rows make: Source is what they make and Sink what it holds,
// both as text ("" for nothing). Field names the differing field of a
// document, when only some differ.
type Difference struct {
	Key    string `json:"key"`
	Field  string `json:"field,omitempty"`
	Source string `json:"source"`
	Sink   string `json:"sink"`
}

// Result is the verification of one node of a topology.
type Result struct {
	Topology string `json:"topology"`
	// Node says what the node does, Sink where it keeps it.
	Node string `json:"node"`
	Sink string `json:"sink,omitempty"`
	// Compared counts the keys compared (buckets and rows, documents).
	Compared int `json:"compared"`
	// Unverifiable says why the node cannot be verified from current rows;
	// empty for the others.
	Unverifiable string `json:"unverifiable,omitempty"`
	// Notes say what was left out of the comparison, and why.
	Notes       []string     `json:"notes,omitempty"`
	Differences []Difference `json:"differences"`
}

// Topology verifies each node of the topology name, run under the consumer
// group group, against the rows src reads; Results are in node order. An
// error is one that stopped a comparison (a sink or the source could not be
// read), not a difference.
func Topology(ctx context.Context, name, group string, nodes []engine.Node, src Source, sinks Sinks) ([]Result, error) {
	c := &collector{topology: name, group: group, src: src, sinks: sinks, models: map[*engine.ReadModel]*rebuilt{}}
	for _, n := range nodes {
		n.Run(c)
	}
	results := make([]Result, 0, len(c.checks))
	for _, check := range c.checks {
		r, err := check(ctx)
		if err != nil {
			return results, fmt.Errorf("verify topology %s: %w", name, err)
		}
		r.Topology = name
		results = append(results, r)
	}
	return results, nil
}

// collector turns each node into its check.
type collector struct {
	topology, group string
	src             Source
	sinks           Sinks
	models          map[*engine.ReadModel]*rebuilt
	checks          []func(context.Context) (Result, error)
}

// rebuilt is a read model's documents made from the current rows, made
// once for the read model and its search index.
type rebuilt struct {
	docs map[string]json.RawMessage
	err  error
	done bool
}

func (c *collector) Metrics(n *engine.Metrics) error {
	c.checks = append(c.checks, func(ctx context.Context) (Result, error) { return c.metrics(ctx, n) })
	return nil
}

func (c *collector) Windowed(n *engine.Windowed) error {
	c.checks = append(c.checks, func(context.Context) (Result, error) {
		return Result{Node: n.Describe(), Sink: "Redis " + engine.RedisKey(c.sinks.RedisPrefix, c.topology, "") + "*",
			Unverifiable: "a row's windows are those of its insert's commit time, which the table does not hold"}, nil
	})
	return nil
}

func (c *collector) Events(n *engine.Events) error {
	c.checks = append(c.checks, func(context.Context) (Result, error) {
		return Result{Node: n.Describe(), Sink: "topic " + n.Output,
			Unverifiable: "domain events follow from the history of changes, not from the rows the table holds now"}, nil
	})
	return nil
}

func (c *collector) Projection(n *engine.Projection) error {
	c.checks = append(c.checks, func(context.Context) (Result, error) {
		return Result{Node: n.Describe(), Sink: "table topic " + engine.TableTopic(engine.ProjectionGroup(c.group, n.Name)),
			Unverifiable: "a projection folds domain events, which follow from the history of changes, not from the rows the tables hold now"}, nil
	})
	return nil
}

func (c *collector) SearchIndex(n *engine.SearchIndex) error {
	c.checks = append(c.checks, func(ctx context.Context) (Result, error) {
		rows, err := c.src.Rows(ctx, n.Input)
		if err != nil {
			return Result{}, err
		}
		want := make(map[string]json.RawMessage, len(rows))
		for _, r := range rows {
			id, doc, err := n.Document(r.Row)
			if err != nil {
				return Result{}, fmt.Errorf("%s: row %s: %w", n.Describe(), engine.ChildKey(r.Key), err)
			}
			if want[id], err = json.Marshal(doc); err != nil {
				return Result{}, fmt.Errorf("%s: document %s: %w", n.Describe(), id, err)
			}
		}
		return c.index(ctx, n.Describe(), n.Index, want)
	})
	return nil
}

func (c *collector) ReadModel(n *engine.ReadModel) error {
	c.checks = append(c.checks, func(ctx context.Context) (Result, error) {
		want, err := c.rebuild(ctx, n)
		if err != nil {
			return Result{}, err
		}
		topic := engine.TableTopic(engine.ReadModelGroup(c.group, n.Name))
		r := Result{Node: "read model " + n.Name, Sink: "table topic " + topic}
		values, err := c.sinks.Table(ctx, topic)
		if errors.Is(err, inspect.ErrNoTopic) {
			r.Notes = append(r.Notes, "the table topic does not exist: the processor creates it when it starts")
			values, err = nil, nil
		}
		if err != nil {
			return Result{}, err
		}
		got := map[string]json.RawMessage{}
		for key, v := range values {
			var st engine.ModelState
			if err := json.Unmarshal(v, &st); err != nil {
				return Result{}, fmt.Errorf("read model %s: state of %s: %w", n.Name, key, err)
			}
			if st.Document != nil {
				got[key] = st.Document
			}
		}
		r.Compared, r.Differences = compareDocuments(want, got)
		return r, nil
	})
	return nil
}

// Postgres is not compared yet: the table is read by no Sinks reader.
func (c *collector) Postgres(n *engine.PostgresTable) error {
	c.checks = append(c.checks, func(context.Context) (Result, error) {
		return Result{Node: n.Describe(), Sink: "postgres table " + n.Target,
			Unverifiable: "verify does not read PostgreSQL tables yet"}, nil
	})
	return nil
}

func (c *collector) ReadModelIndex(n *engine.ReadModelIndex) error {
	c.checks = append(c.checks, func(ctx context.Context) (Result, error) {
		docs, err := c.rebuild(ctx, n.Model)
		if err != nil {
			return Result{}, err
		}
		want := make(map[string]json.RawMessage, len(docs))
		for key, doc := range docs {
			v, ok, err := n.Document(&engine.ModelState{Document: doc})
			if err != nil {
				return Result{}, fmt.Errorf("%s: document %s: %w", n.Describe(), key, err)
			}
			if ok {
				if want[key], err = json.Marshal(v); err != nil {
					return Result{}, fmt.Errorf("%s: document %s: %w", n.Describe(), key, err)
				}
			}
		}
		return c.index(ctx, n.Describe(), n.Index, want)
	})
	return nil
}

// rebuild makes the documents of read model n from the current rows of its
// tables, once.
func (c *collector) rebuild(ctx context.Context, n *engine.ReadModel) (map[string]json.RawMessage, error) {
	m := c.models[n]
	if m == nil {
		m = &rebuilt{}
		c.models[n] = m
	}
	if m.done {
		return m.docs, m.err
	}
	rows := map[string][]engine.CurrentRow{}
	for _, topic := range n.Inputs() {
		r, err := c.src.Rows(ctx, topic)
		if err != nil {
			return nil, err // not kept: it may be ctx's
		}
		rows[topic] = r
	}
	m.docs, m.err = n.Rebuild(rows)
	m.done = true
	return m.docs, m.err
}

// index compares the search index index with the documents want, by id.
func (c *collector) index(ctx context.Context, node, index string, want map[string]json.RawMessage) (Result, error) {
	r := Result{Node: node, Sink: "search index " + index}
	got, err := searchDocuments(ctx, c.sinks.Elasticsearch, index)
	if errors.Is(err, errNoIndex) {
		r.Notes = append(r.Notes, "the index does not exist: the processor creates it when it starts")
		got, err = map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return r, err
	}
	r.Compared, r.Differences = compareDocuments(want, got)
	return r, nil
}

// compareDocuments compares documents by key: the number of keys compared,
// and the differences in key order (field by field for JSON objects).
func compareDocuments(want, got map[string]json.RawMessage) (int, []Difference) {
	keys := union(want, got)
	var diffs []Difference
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			diffs = append(diffs, Difference{Key: k, Source: compact(w)})
		case !inWant:
			diffs = append(diffs, Difference{Key: k, Sink: compact(g)})
		default:
			diffs = append(diffs, fieldDifferences(k, w, g)...)
		}
	}
	return len(keys), diffs
}

// fieldDifferences compares two JSON documents of key: field by field when
// both are objects, else whole.
func fieldDifferences(key string, want, got json.RawMessage) []Difference {
	w, werr := decodeJSON(want)
	g, gerr := decodeJSON(got)
	if werr != nil || gerr != nil {
		if !bytes.Equal(want, got) {
			return []Difference{{Key: key, Source: compact(want), Sink: compact(got)}}
		}
		return nil
	}
	wm, wok := w.(map[string]any)
	gm, gok := g.(map[string]any)
	if !wok || !gok {
		if !reflect.DeepEqual(w, g) {
			return []Difference{{Key: key, Source: compact(want), Sink: compact(got)}}
		}
		return nil
	}
	var diffs []Difference
	for _, f := range union(wm, gm) {
		wv, inW := wm[f]
		gv, inG := gm[f]
		if inW == inG && reflect.DeepEqual(wv, gv) {
			continue
		}
		d := Difference{Key: key, Field: f}
		if inW {
			d.Source = jsonText(wv)
		}
		if inG {
			d.Sink = jsonText(gv)
		}
		diffs = append(diffs, d)
	}
	return diffs
}

// union returns the keys of a and b, sorted.
func union[K cmp.Ordered, V, W any](a map[K]V, b map[K]W) []K {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compact(b json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
