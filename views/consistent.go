package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// ConsistentTable is the documents of a transaction-consistent read model
// (topologies.Consistent) as a reader sees them: one source transaction at a
// time. Its processor publishes a transaction's documents only once all of
// the transaction went through the read model, followed by a commit
// marker; the table takes the documents in only at the marker, all at once,
// so Get and Each never see part of a transaction: an order's summary never
// counts line items the order's own row does not (yet) have, or the
// reverse, when they were committed together.
//
// The documents are kept in memory, read from the whole topic on every
// start. A ConsistentTable connects to nothing until [ConsistentTable.Run];
// Get, Each and Version are safe for concurrent use with each other and
// with Run.
type ConsistentTable[V any] struct {
	topic   string
	brokers []string
	sarama  *sarama.Config
	model   string
	decode  func(json.RawMessage) (V, error)
	cfg     tableConfig

	running   atomic.Bool
	recovered atomic.Bool

	mu      sync.RWMutex
	docs    map[string]consistentDoc[V]
	version change.Position // of the latest transaction taken in
	txs     int64
}

// consistentDoc is a document and the version it is at; a deleted
// document (ok false) keeps its version, so that an older one published
// late does not bring it back.
type consistentDoc[V any] struct {
	v       V
	ok      bool
	version change.Position
}

// ConsistentReadModel returns the table of the documents of model, a
// transaction-consistent read model whose topology runs as the consumer
// group group (processors.Config.Group, by default the topology's name).
// Of the options, WithSaramaConfig and WithLogger apply. It connects to
// nothing until Run.
func ConsistentReadModel[V any](brokers []string, group string, model *topologies.ReadModelNode[V], opts ...TableOption) (*ConsistentTable[V], error) {
	if rm, _ := model.Engine().(*engine.ReadModel); rm == nil || !rm.Consistent {
		return nil, fmt.Errorf("read model %s is not transaction-consistent: declare it with topologies.Consistent[V]() among its parts, or read it with views.ReadModel", model.Name())
	}
	return newConsistentTable(brokers, group, model.Name(), model.Document, opts)
}

// ConsistentDocuments is [ConsistentReadModel] for the read model named
// model, its documents as JSON: for serving read models whose document type
// the server does not know.
func ConsistentDocuments(brokers []string, group, model string, opts ...TableOption) (*ConsistentTable[json.RawMessage], error) {
	return newConsistentTable(brokers, group, model, func(doc json.RawMessage) (json.RawMessage, error) { return doc, nil }, opts)
}

func newConsistentTable[V any](brokers []string, group, model string, decode func(json.RawMessage) (V, error), opts []TableOption) (*ConsistentTable[V], error) {
	cfg := tableConfig{sarama: saramaConfig()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if len(brokers) == 0 {
		return nil, errors.New("no Kafka brokers: pass the brokers the read model's processor writes to")
	}
	sc := *cfg.sarama
	sc.Metadata.AllowAutoTopicCreation = false
	return &ConsistentTable[V]{topic: engine.ConsistentTopic(group, model), brokers: brokers, sarama: &sc, model: model,
		decode: decode, cfg: cfg, docs: map[string]consistentDoc[V]{}}, nil
}

// Topic implements [View]: the topic the read model's gate publishes to.
func (t *ConsistentTable[V]) Topic() string { return t.topic }

// Recovered implements [View]: the table has taken in every transaction
// the topic held when Run started.
func (t *ConsistentTable[V]) Recovered() bool { return t.recovered.Load() }

// Run follows the topic until ctx ends (nil) or reading it fails. It fails
// at once, naming the fix, when Kafka is unreachable or the topic does not
// exist yet. A table runs once.
func (t *ConsistentTable[V]) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return fmt.Errorf("table %s: Run called twice", t.topic)
	}
	defer t.recovered.Store(false)
	client, err := sarama.NewClient(t.brokers, t.sarama)
	if err != nil {
		return fmt.Errorf("table %s: Kafka unreachable at %v: %w; check the brokers and that Kafka is running", t.topic, t.brokers, err)
	}
	defer client.Close()
	if _, err := client.Partitions(t.topic); err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return fmt.Errorf("table topic %s does not exist in Kafka at %v: the processor of the transaction-consistent read model %s creates it when it starts; start that processor first, or check the group name", t.topic, t.brokers, t.model)
		}
		return fmt.Errorf("table %s: partitions: %w", t.topic, err)
	}
	end, err := client.GetOffset(t.topic, 0, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("table %s: end offset: %w", t.topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("table %s: consumer: %w", t.topic, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(t.topic, 0, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("table %s: consume: %w", t.topic, err)
	}
	defer pc.Close()
	start := time.Now()
	if end == 0 {
		t.recover(start)
	}
	var pending []*sarama.ConsumerMessage // the documents since the last commit marker
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			t.cfg.logger.Warn("reading a consistent read model's topic failed; retrying", "topic", t.topic, "err", err)
		case msg := <-pc.Messages():
			if string(msg.Key) == engine.CommitKey {
				if err := t.commit(pending, msg); err != nil {
					return err
				}
				pending = pending[:0]
			} else {
				pending = append(pending, msg)
			}
			if msg.Offset >= end-1 && !t.recovered.Load() {
				t.recover(start)
			}
		}
	}
}

func (t *ConsistentTable[V]) recover(start time.Time) {
	t.recovered.Store(true)
	t.cfg.logger.Info("view recovered", "topic", t.topic, "took", time.Since(start).Round(time.Millisecond))
}

// commit takes in the documents published before the commit marker
// marker, all at once.
func (t *ConsistentTable[V]) commit(docs []*sarama.ConsumerMessage, marker *sarama.ConsumerMessage) error {
	var m engine.Published
	if err := json.Unmarshal(marker.Value, &m); err != nil {
		return fmt.Errorf("table %s: commit marker at offset %d: %w", t.topic, marker.Offset, err)
	}
	type update struct {
		key string
		doc consistentDoc[V]
	}
	updates := make([]update, 0, len(docs))
	for _, msg := range docs {
		var p engine.Published
		var st engine.ModelState
		if err := json.Unmarshal(msg.Value, &p); err != nil {
			return fmt.Errorf("table %s: document at offset %d: %w", t.topic, msg.Offset, err)
		}
		if err := json.Unmarshal(p.State, &st); err != nil {
			return fmt.Errorf("table %s: document state at offset %d: %w", t.topic, msg.Offset, err)
		}
		d := consistentDoc[V]{version: p.Version}
		if st.Document != nil {
			v, err := t.decode(st.Document)
			if err != nil {
				return fmt.Errorf("table %s: key %q: %w", t.topic, msg.Key, err)
			}
			d.v, d.ok = v, true
		}
		updates = append(updates, update{string(msg.Key), d})
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range updates {
		// The gate publishes transactions in commit order; a document
		// published again (the gate restarted mid-transaction) never goes
		// back to an older version.
		if old, ok := t.docs[u.key]; ok && u.doc.version.Compare(old.version) < 0 {
			continue
		}
		t.docs[u.key] = u.doc
		if t.version.Compare(u.doc.version) < 0 {
			t.version = u.doc.version
		}
	}
	t.txs++
	return nil
}

// Get returns the document of a root key, and whether there is one. It fails
// with [ErrNotReady] until the table has recovered.
func (t *ConsistentTable[V]) Get(key string) (V, bool, error) {
	var zero V
	if !t.recovered.Load() {
		return zero, false, t.notReady()
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	d := t.docs[key]
	return d.v, d.ok, nil
}

// Each calls fn for every document, in no particular order, until fn
// returns false: all of them as of one transaction, no other taken in while
// Each runs (fn must not block, nor call Get or Each of the same table). It
// fails with [ErrNotReady] until the table has recovered.
func (t *ConsistentTable[V]) Each(fn func(key string, value V) bool) error {
	if !t.recovered.Load() {
		return t.notReady()
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for k, d := range t.docs {
		if d.ok && !fn(k, d.v) {
			return nil
		}
	}
	return nil
}

// Version returns the position of the latest change the table took in, and
// how many transactions it took in since Run started.
func (t *ConsistentTable[V]) Version() (change.Position, int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.version, t.txs
}

func (t *ConsistentTable[V]) notReady() error {
	return fmt.Errorf("table %s has not caught up with its topic yet: %w", t.topic, ErrNotReady)
}
