package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// countLimit is how many offsets one count reads record by record; past it,
// a count is of offsets (Lag.Exact false).
const countLimit = 200_000

// Kafka reads consumer groups, their lag and the records of topics. It is
// safe for concurrent use.
type Kafka struct {
	opts []kgo.Opt
	cl   *kgo.Client
	adm  *kadm.Client
}

// NewKafka returns a Kafka over a client with opts (the seed brokers, TLS,
// SASL: kafkaconn.Config.KgoOpts). It connects when first asked something.
func NewKafka(opts []kgo.Opt) (*Kafka, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("Kafka client: %w", err)
	}
	return &Kafka{opts: opts, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (k *Kafka) Close() { k.cl.Close() }

// Admin returns the admin client, for what this package does not do
// (deleting groups and topics).
func (k *Kafka) Admin() *kadm.Client { return k.adm }

// Group is a consumer group as Kafka describes it.
type Group struct {
	Name string `json:"group"`
	// State is Kafka's: Stable, Empty, PreparingRebalance,
	// CompletingRebalance, or Dead for a group Kafka does not know (never
	// run, or deleted).
	State string `json:"state"`
	// Members are the group's members, as client-id@host.
	Members []string `json:"members,omitempty"`
	// assigned are the topics the members were assigned.
	assigned []string
}

// DescribeGroups describes groups, in the order given.
func (k *Kafka) DescribeGroups(ctx context.Context, groups ...string) ([]Group, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	described, err := k.adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, fmt.Errorf("describe consumer groups: %w", err)
	}
	out := make([]Group, len(groups))
	for i, name := range groups {
		d, ok := described[name]
		if !ok || errors.Is(d.Err, kerr.GroupIDNotFound) {
			out[i] = Group{Name: name, State: "Dead"}
			continue
		}
		if d.Err != nil {
			return nil, fmt.Errorf("describe consumer group %s: %w", name, d.Err)
		}
		g := Group{Name: name, State: d.State}
		for _, m := range d.Members {
			g.Members = append(g.Members, m.ClientID+"@"+strings.TrimPrefix(m.ClientHost, "/"))
		}
		g.assigned = d.AssignedPartitions().Topics()
		out[i] = g
	}
	return out, nil
}

// ListGroups returns the consumer groups whose names start with prefix,
// sorted.
func (k *Kafka) ListGroups(ctx context.Context, prefix string) ([]string, error) {
	listed, err := k.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list consumer groups: %w", err)
	}
	return withPrefix(listed.Groups(), prefix), nil
}

// ListTopics returns the topics whose names start with prefix, sorted,
// without Kafka's internal ones.
func (k *Kafka) ListTopics(ctx context.Context, prefix string) ([]string, error) {
	topics, err := k.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return withPrefix(topics.Names(), prefix), nil
}

// withPrefix returns the names that start with prefix, sorted.
func withPrefix(names []string, prefix string) []string {
	out := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !strings.HasPrefix(n, prefix) })
	slices.Sort(out)
	return out
}

// Lag is what is left to read.
type Lag struct {
	// Records counts the records left to read, transaction markers and
	// aborted records left out; when Exact is false, there were too many to
	// count one by one, and Records counts offsets (an upper bound).
	Records int64 `json:"records"`
	Exact   bool  `json:"exact"`
	// Oldest is the timestamp of the oldest record left to read; zero when
	// none is.
	Oldest time.Time `json:"oldest,omitzero"`
}

// Age is how long the oldest record left to read has waited at now; 0
// without lag.
func (l Lag) Age(now time.Time) time.Duration {
	if l.Oldest.IsZero() || l.Records == 0 {
		return 0
	}
	return max(now.Sub(l.Oldest), 0)
}

func (l *Lag) add(o Lag) {
	l.Records += o.Records
	l.Exact = l.Exact && o.Exact
	if !o.Oldest.IsZero() && (l.Oldest.IsZero() || o.Oldest.Before(l.Oldest)) {
		l.Oldest = o.Oldest
	}
}

// TopicLag is a group's lag on one topic.
type TopicLag struct {
	Topic string `json:"topic"`
	Lag   `json:"lag"`
	// Missing tells that the topic does not exist (yet).
	Missing bool `json:"missing,omitempty"`
}

// GroupLag is a consumer group and its lag on the topics it reads.
type GroupLag struct {
	Group
	Lag    `json:"lag"`
	Topics []TopicLag `json:"topics"`
}

// GroupLag returns the lag of group on topics and on every other topic the
// group committed offsets for or is assigned: the records after its
// committed offset (from the start of a partition it committed none for)
// up to the partition's last stable offset.
func (k *Kafka) GroupLag(ctx context.Context, group string, topics []string) (GroupLag, error) {
	described, err := k.DescribeGroups(ctx, group)
	if err != nil {
		return GroupLag{}, err
	}
	gl := GroupLag{Group: described[0], Lag: Lag{Exact: true}}
	committed, err := k.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return gl, fmt.Errorf("committed offsets of consumer group %s: %w", group, err)
	}
	all := slices.Clone(topics)
	all = append(all, gl.assigned...)
	for t := range committed {
		all = append(all, t)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	starts, ends, err := k.bounds(ctx, all)
	if err != nil {
		return gl, err
	}
	var spans []*span
	for _, t := range all {
		if _, ok := ends[t]; !ok {
			gl.Topics = append(gl.Topics, TopicLag{Topic: t, Missing: true, Lag: Lag{Exact: true}})
			continue
		}
		for p, end := range ends[t] {
			from := starts[t][p]
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At > from {
				from = c.At
			}
			spans = append(spans, &span{topic: t, partition: p, from: from, end: end})
		}
	}
	if err := k.count(ctx, spans); err != nil {
		return gl, fmt.Errorf("lag of consumer group %s: %w", group, err)
	}
	byTopic := map[string]*Lag{}
	for _, s := range spans {
		if byTopic[s.topic] == nil {
			byTopic[s.topic] = &Lag{Exact: true}
		}
		byTopic[s.topic].add(s.lag)
	}
	for _, t := range all {
		if l := byTopic[t]; l != nil {
			gl.Topics = append(gl.Topics, TopicLag{Topic: t, Lag: *l})
			gl.Lag.add(*l)
		}
	}
	slices.SortFunc(gl.Topics, func(a, b TopicLag) int { return strings.Compare(a.Topic, b.Topic) })
	return gl, nil
}

// Topic is a topic and the records it holds.
type Topic struct {
	Name       string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Records counts the records the topic holds (read_committed: without
	// transaction markers and aborted records); when Exact is false, there
	// were too many to count one by one, and it counts offsets.
	Records int64 `json:"records"`
	Exact   bool  `json:"exact"`
	// Missing tells that the topic does not exist.
	Missing bool `json:"missing,omitempty"`
}

// Topics counts the records of topics, in the order given.
func (k *Kafka) Topics(ctx context.Context, topics ...string) ([]Topic, error) {
	starts, ends, err := k.bounds(ctx, topics)
	if err != nil {
		return nil, err
	}
	out := make([]Topic, len(topics))
	var spans []*span
	for i, t := range topics {
		out[i] = Topic{Name: t, Partitions: len(ends[t]), Exact: true, Missing: ends[t] == nil}
		for p, end := range ends[t] {
			spans = append(spans, &span{topic: t, partition: p, from: starts[t][p], end: end})
		}
	}
	if err := k.count(ctx, spans); err != nil {
		return nil, err
	}
	for i := range out {
		for _, s := range spans {
			if s.topic == out[i].Name {
				out[i].Records += s.lag.Records
				out[i].Exact = out[i].Exact && s.lag.Exact
			}
		}
	}
	return out, nil
}

// ErrNoTopic is returned by Table for a topic that does not exist.
var ErrNoTopic = errors.New("the topic does not exist")

// Table returns the latest value of each key of the compacted topic topic,
// a goka group's table, read with read_committed isolation up to the end
// of each partition; keys whose latest record is a tombstone are left out.
func (k *Kafka) Table(ctx context.Context, topic string) (map[string][]byte, error) {
	starts, ends, err := k.bounds(ctx, []string{topic})
	if err != nil {
		return nil, err
	}
	if ends[topic] == nil {
		return nil, fmt.Errorf("table topic %s: %w", topic, ErrNoTopic)
	}
	var spans []*span
	for p, end := range ends[topic] {
		spans = append(spans, &span{topic: topic, partition: p, from: starts[topic][p], end: end})
	}
	values := map[string][]byte{}
	err = k.scan(ctx, spans, func(_ *span, r *kgo.Record) bool {
		if r.Value == nil {
			delete(values, string(r.Key))
		} else {
			values[string(r.Key)] = r.Value
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read table topic %s: %w", topic, err)
	}
	return values, nil
}

// bounds returns, per partition of each existing topic, its start offset
// and its last stable offset (the end a read_committed consumer reads to).
// Topics that do not exist are absent.
func (k *Kafka) bounds(ctx context.Context, topics []string) (starts, ends map[string]map[int32]int64, err error) {
	starts, ends = map[string]map[int32]int64{}, map[string]map[int32]int64{}
	if len(topics) == 0 {
		return starts, ends, nil
	}
	listed := [2]kadm.ListedOffsets{}
	for i, list := range []func(context.Context, ...string) (kadm.ListedOffsets, error){k.adm.ListStartOffsets, k.adm.ListCommittedOffsets} {
		if listed[i], err = list(ctx, topics...); err != nil {
			return nil, nil, fmt.Errorf("list offsets of %s: %w", strings.Join(topics, ", "), err)
		}
	}
	for i, into := range []map[string]map[int32]int64{starts, ends} {
		for t, parts := range listed[i] {
			for p, o := range parts {
				if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
					continue
				}
				if o.Err != nil {
					return nil, nil, fmt.Errorf("list offsets of %s partition %d: %w", t, p, o.Err)
				}
				if into[t] == nil {
					into[t] = map[int32]int64{}
				}
				into[t][p] = o.Offset
			}
		}
	}
	return starts, ends, nil
}

// A span is the offsets [from, end) of a partition, and what is in them.
type span struct {
	topic     string
	partition int32
	from, end int64
	lag       Lag
}

// count counts the records of each span, and the timestamp of its first.
// When the spans hold more than countLimit offsets, it reads only up to
// each span's first record and counts offsets.
func (k *Kafka) count(ctx context.Context, spans []*span) error {
	var total int64
	for _, s := range spans {
		total += max(s.end-s.from, 0)
	}
	exact := total <= countLimit
	err := k.scan(ctx, spans, func(s *span, r *kgo.Record) bool {
		if s.lag.Oldest.IsZero() {
			s.lag.Oldest = r.Timestamp
		}
		s.lag.Records++
		return exact
	})
	for _, s := range spans {
		s.lag.Exact = exact
		if !exact && s.lag.Records > 0 {
			s.lag.Records = s.end - s.from
		}
	}
	return err
}

// scan reads the records of spans with read_committed isolation and hands
// each (transaction markers and aborted records left out) to fn, until
// every span is read, or fn returns false for it.
func (k *Kafka) scan(ctx context.Context, spans []*span, fn func(*span, *kgo.Record) bool) error {
	type tp struct {
		topic     string
		partition int32
	}
	pending := map[tp]*span{}
	offsets := map[string]map[int32]kgo.Offset{}
	for _, s := range spans {
		if s.end <= s.from {
			continue
		}
		pending[tp{s.topic, s.partition}] = s
		if offsets[s.topic] == nil {
			offsets[s.topic] = map[int32]kgo.Offset{}
		}
		offsets[s.topic][s.partition] = kgo.NewOffset().At(s.from)
	}
	if len(pending) == 0 {
		return nil
	}
	// Control records are kept so that a span ending in a transaction's
	// marker is seen to end.
	cl, err := kgo.NewClient(append(slices.Clone(k.opts), kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d partitions: %w", len(pending), err)
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("read %s partition %d: %w", t, p, err) })
		if fetchErr != nil {
			return fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			key := tp{r.Topic, r.Partition}
			s := pending[key]
			if s == nil {
				return
			}
			done := r.Offset >= s.end-1
			if r.Offset < s.end && !r.Attrs.IsControl() && !fn(s, r) {
				done = true
			}
			if done {
				delete(pending, key)
				cl.PauseFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
			}
		})
	}
	return nil
}

// Ping checks that Kafka answers within 10s.
func (k *Kafka) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := k.adm.BrokerMetadata(ctx)
	return err
}

// Checkpoint reads the last checkpoint the capture of topic prefix prefix
// and slot slot committed to topic.
func (k *Kafka) Checkpoint(ctx context.Context, topic, prefix, slot string) (*CheckpointStatus, error) {
	c := &CheckpointStatus{Topic: topic, Key: prefix + "/" + slot}
	if _, ends, err := k.bounds(ctx, []string{topic}); err != nil {
		return nil, err
	} else if ends[topic] == nil {
		return c, nil // no capture has run with this checkpoint topic
	}
	var err error
	c.Checkpoint, c.Found, err = capture.ReadCheckpoint(ctx, nil, topic, prefix, slot, k.opts...)
	if err != nil {
		return nil, fmt.Errorf("read capture's checkpoint: %w", err)
	}
	return c, nil
}

// Truncated returns those of topics that no longer hold their first
// records (a partition starts past offset 0: retention deleted them).
func (k *Kafka) Truncated(ctx context.Context, topics ...string) ([]string, error) {
	starts, _, err := k.bounds(ctx, topics)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range topics {
		for _, o := range starts[t] {
			if o > 0 {
				out = append(out, t)
				break
			}
		}
	}
	return out, nil
}
