package views

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/internal/kafkahash"
	"github.com/cdcflow/cdcflow/internal/memstore"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// ErrNotReady is returned by [Table.Get] and [Table.Each] until the table's
// view has caught up with its table topic, and after its Run returned. The
// HTTP handlers answer it with 503 Service Unavailable.
var ErrNotReady = errors.New("not ready")

// Table is a read-only, typed view of a goka group table: a local copy of
// the table topic that follows it as the processor owning it writes, and
// answers lookups by key. Values are decoded by the table's codec ([JSON] by
// default) into V.
//
// A Table connects to nothing until [Table.Run]. Get and Each are safe for
// concurrent use with each other and with Run.
type Table[V any] struct {
	topic   goka.Table
	brokers []string
	cfg     tableConfig

	running   atomic.Bool
	recovered atomic.Bool
	mu        sync.RWMutex // guards view against its shutdown
	view      *goka.View
}

type tableConfig struct {
	codec   goka.Codec
	prefix  string // of the keys of the table topic this table sees
	storage storage.Builder
	sarama  *sarama.Config
	logger  *slog.Logger
	tester  goka.Tester
}

// TableOption configures a [Table].
type TableOption func(*tableConfig)

// WithCodec decodes the table's values with c instead of [JSON]. c.Decode must
// return a V; a table whose values are Avro-encoded or protobuf-encoded
// passes its codec here.
func WithCodec(c goka.Codec) TableOption {
	return func(cfg *tableConfig) { cfg.codec = c }
}

// withKeyPrefix makes the table see only the keys of its topic that start
// with prefix, without it.
func withKeyPrefix(prefix string) TableOption {
	return func(cfg *tableConfig) { cfg.prefix = prefix }
}

// WithStateDir keeps the table's local copy on disk (LevelDB, one directory
// per partition below dir), so that a restart reads only what the topic
// gained since. The default keeps it in memory and reads the whole topic on
// every start. Two tables of one topic must not share dir.
func WithStateDir(dir string) TableOption {
	return WithStorage(storage.DefaultBuilder(dir))
}

// WithStorage keeps the table's local copy in the partition storages b
// builds (any goka storage).
func WithStorage(b storage.Builder) TableOption {
	return func(cfg *tableConfig) { cfg.storage = b }
}

// WithSaramaConfig sets the Kafka client configuration, e.g. for TLS or SASL.
// It must read committed records only (processors.SaramaConfig does); the
// table uses a copy with topic auto-creation turned off, so that a view never
// creates the table topic its processor owns. The default reads committed
// records with the Kafka protocol version processors.SaramaConfig sets.
func WithSaramaConfig(sc *sarama.Config) TableOption {
	return func(cfg *tableConfig) { cfg.sarama = sc }
}

// WithLogger receives the table's log lines (goka's at info level). Default:
// discard.
func WithLogger(l *slog.Logger) TableOption {
	return func(cfg *tableConfig) { cfg.logger = l }
}

// WithTester runs the table against goka's in-memory tester
// (github.com/lovoo/goka/tester) instead of Kafka, keeping its copy in the
// tester's storage (WithStorage and WithStateDir do not apply); brokers are
// then not needed. The tester hands a view only records written after it
// recovered. A processor running on the same tester keeps its tables with
// codecs of its own, and the tester refuses one topic read with two codecs:
// run the view on a tester of its own, fed the table's records.
func WithTester(t goka.Tester) TableOption {
	return func(cfg *tableConfig) { cfg.tester = t }
}

// NewTable validates its arguments and returns a table over topic, a goka
// group table ("<group>-table", see goka.GroupTable). It connects to nothing
// until Run. It finds a key in the partition Kafka's default partitioner
// picks (murmur2), where cdcflow's processors write it; a goka processor of
// your own must write its table so too (goka.WithHasher with a murmur2
// hash), not with goka's default FNV-1a.
func NewTable[V any](brokers []string, topic goka.Table, opts ...TableOption) (*Table[V], error) {
	cfg := tableConfig{codec: JSON[V]{}, storage: memstore.Builder(), sarama: saramaConfig()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(brokers, topic); err != nil {
		return nil, err
	}
	sc := *cfg.sarama
	sc.Metadata.AllowAutoTopicCreation = false
	cfg.sarama = &sc
	return &Table[V]{topic: topic, brokers: brokers, cfg: cfg}, nil
}

// saramaConfig matches processors.SaramaConfig for what a consumer does:
// read_committed, so that records of aborted transactions are never seen.
func saramaConfig() *sarama.Config {
	sc := goka.DefaultConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	return sc
}

func (c *tableConfig) validate(brokers []string, topic goka.Table) error {
	var errs []error
	if topic == "" {
		errs = append(errs, errors.New("no table topic: name the goka group table, goka.GroupTable(group)"))
	}
	if len(brokers) == 0 && c.tester == nil {
		errs = append(errs, fmt.Errorf("table %s: no Kafka brokers", topic))
	}
	if c.codec == nil {
		errs = append(errs, fmt.Errorf("table %s: nil codec", topic))
	}
	if c.storage == nil {
		errs = append(errs, fmt.Errorf("table %s: nil storage builder", topic))
	}
	switch {
	case c.sarama == nil:
		errs = append(errs, fmt.Errorf("table %s: nil sarama config", topic))
	case c.sarama.Consumer.IsolationLevel != sarama.ReadCommitted:
		errs = append(errs, fmt.Errorf("table %s: the sarama config reads uncommitted records; set Consumer.IsolationLevel = sarama.ReadCommitted (processors.SaramaConfig does)", topic))
	default:
		if err := c.sarama.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("table %s: sarama config: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// Topic returns the table topic the table follows.
func (t *Table[V]) Topic() string { return string(t.topic) }

// Recovered reports whether the table has caught up with its table topic
// since Run started: it becomes true once every partition's local copy
// reached the end the topic had when Run started it, and stays true until
// Run returns. From then on the table keeps following the topic, so a
// lookup sees a write as soon as the table consumed it.
func (t *Table[V]) Recovered() bool { return t.recovered.Load() }

// Run follows the table topic until ctx ends or the view fails; it returns
// nil when ctx ends. It first checks that Kafka is reachable and the topic
// exists, and fails at once, naming the fix, if not; once running it
// reconnects by itself after Kafka errors. A table runs once.
func (t *Table[V]) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return fmt.Errorf("table %s: Run called twice", t.topic)
	}
	view, err := t.newView()
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.view = view
	t.mu.Unlock()

	// goka closes the view's partitions when its Run ends: detach the view
	// from readers first, then stop it.
	viewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		t.detach()
		stop()
	}()
	go t.watchRecovery(viewCtx, view)

	err = view.Run(viewCtx)
	t.detach()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("table %s: %w", t.topic, err)
	}
	return fmt.Errorf("table %s: view stopped", t.topic)
}

func (t *Table[V]) detach() {
	t.mu.Lock()
	t.view = nil
	t.recovered.Store(false)
	t.mu.Unlock()
}

// newView checks Kafka and the topic, then builds the goka view (which
// connects to Kafka).
func (t *Table[V]) newView() (*goka.View, error) {
	// goka's consumer builder sets the ClientID of the config it holds.
	consumerConfig := *t.cfg.sarama
	tmb := goka.TopicManagerBuilderWithConfig(t.cfg.sarama, goka.NewTopicManagerConfig())
	opts := []goka.ViewOption{
		goka.WithViewStorageBuilder(t.cfg.storage),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(&consumerConfig)),
		goka.WithViewTopicManagerBuilder(tmb),
		goka.WithViewLogger(slog.NewLogLogger(t.cfg.logger.Handler(), slog.LevelInfo)),
		goka.WithViewAutoReconnect(),
		goka.WithViewHasher(kafkahash.New), // as the processors write tables
	}
	if t.cfg.tester != nil {
		tmb = t.cfg.tester.TopicManagerBuilder()
		opts = append(opts, goka.WithViewTester(t.cfg.tester))
	}
	if err := t.checkTopic(tmb); err != nil {
		return nil, err
	}
	view, err := goka.NewView(t.brokers, t.topic, t.cfg.codec, opts...)
	if err != nil {
		return nil, fmt.Errorf("table %s: start view: %w", t.topic, err)
	}
	return view, nil
}

// checkTopic turns the two likely start-up failures into errors naming the
// fix: Kafka unreachable, and a table topic its processor has not created
// yet.
func (t *Table[V]) checkTopic(tmb goka.TopicManagerBuilder) error {
	tm, err := tmb(t.brokers)
	if err != nil {
		return fmt.Errorf("table %s: Kafka unreachable at %v: %w; check the brokers and that Kafka is running", t.topic, t.brokers, err)
	}
	defer tm.Close()
	if _, err := tm.Partitions(string(t.topic)); err != nil {
		// goka's topic manager reports a missing topic with an unexported
		// error; its text is all there is to match.
		if strings.Contains(err.Error(), "requested topic was not found") {
			owner := "the goka processor that owns it"
			if group, ok := strings.CutSuffix(string(t.topic), "-table"); ok {
				owner = "the processor of group " + group
			}
			return fmt.Errorf("table topic %s does not exist in Kafka at %v: %s creates it when it starts; start that processor first, or check the table name", t.topic, t.brokers, owner)
		}
		return fmt.Errorf("table %s: partitions: %w", t.topic, err)
	}
	return nil
}

// watchRecovery marks the table recovered once every partition of view has
// caught up.
func (t *Table[V]) watchRecovery(ctx context.Context, view *goka.View) {
	start := time.Now()
	select {
	case <-view.WaitRunning():
	case <-ctx.Done():
		return
	}
	// The view's merged state can run ahead of a partition that has not
	// reported yet; Recovered asks every partition.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.RLock()
		if t.view != view {
			t.mu.RUnlock()
			return
		}
		if view.Recovered() {
			t.recovered.Store(true)
			t.mu.RUnlock()
			t.cfg.logger.Info("view recovered", "topic", string(t.topic), "took", time.Since(start).Round(time.Millisecond))
			return
		}
		t.mu.RUnlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Get returns the value stored under key, and whether there is one. It fails
// with [ErrNotReady] until the table has recovered.
func (t *Table[V]) Get(key string) (V, bool, error) {
	var zero V
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.view == nil || !t.recovered.Load() {
		return zero, false, t.notReady()
	}
	raw, err := t.view.Get(t.cfg.prefix + key)
	if err != nil {
		return zero, false, fmt.Errorf("table %s: get %q: %w", t.topic, key, err)
	}
	if raw == nil {
		return zero, false, nil
	}
	v, err := t.typed(raw)
	if err != nil {
		return zero, false, fmt.Errorf("table %s: key %q: %w", t.topic, key, err)
	}
	return v, true, nil
}

// Each calls fn for every key and value in the table, in no particular order
// across partitions, until fn returns false. It fails with [ErrNotReady]
// until the table has recovered. The table's state stays open while Each
// runs, and Run's shutdown waits for it: fn should not block, nor call Get or
// Each of the same table.
func (t *Table[V]) Each(fn func(key string, value V) bool) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.view == nil || !t.recovered.Load() {
		return t.notReady()
	}
	it, err := t.view.Iterator()
	if err != nil {
		return fmt.Errorf("table %s: iterate: %w", t.topic, err)
	}
	defer it.Release()
	for it.Next() {
		key, ok := strings.CutPrefix(it.Key(), t.cfg.prefix)
		if !ok {
			continue
		}
		raw, err := it.Value()
		if err != nil {
			return fmt.Errorf("table %s: key %q: %w", t.topic, it.Key(), err)
		}
		if raw == nil {
			continue
		}
		v, err := t.typed(raw)
		if err != nil {
			return fmt.Errorf("table %s: key %q: %w", t.topic, it.Key(), err)
		}
		if !fn(key, v) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("table %s: iterate: %w", t.topic, err)
	}
	return nil
}

func (t *Table[V]) notReady() error {
	return fmt.Errorf("table %s has not caught up with its topic yet: %w", t.topic, ErrNotReady)
}

func (t *Table[V]) typed(raw any) (V, error) {
	v, ok := raw.(V)
	if !ok {
		var zero V
		return zero, fmt.Errorf("codec %T decoded a %T, not a %T", t.cfg.codec, raw, zero)
	}
	return v, nil
}
