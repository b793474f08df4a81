package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The events of an Events node reach their event topic exactly once, as a
// read_committed consumer sees them, across any crash:
//
//   - The node's callback does not emit: it puts the events a change derives
//     in the row's state (engine.RowState.Outbox), which goka writes to the
//     group table as one record. The change's offset is committed after that
//     record is written; a change processed again after a crash finds the
//     state written and derives nothing (the position guard), or finds it
//     not written and derives the same events again, once.
//   - The relay consumes the group table topic (read_committed, in a
//     consumer group of its own, engine.RelayGroup) and produces each
//     outboxed event to its event topic in a Kafka transaction that also
//     commits the relay's offsets (kgo.GroupTransactSession, KIP-447): a
//     table record's events are published if and only if its offset is
//     committed. A crashed relay's open transaction is aborted when the
//     next relay with its transactional id starts (a stable id per group,
//     and per Config.Instance).
//
// Each row state holds only the events of its own change: the relay reads
// every version of a row's state in order (the table topic is compacted,
// but never the segment being written, and the relay runs beside the
// processor that writes it). A table record written twice (a producer
// retry) is relayed once: the relay skips a state at or before the
// position it last relayed for the row.

// relayEndTimeout bounds how long the relay waits for Kafka to end a
// transaction when it stops.
const relayEndTimeout = 15 * time.Second

// relay publishes the outboxes of the row states in table (a goka group
// table of Events nodes' row states).
type relay struct {
	p     *Processor
	group string // the relay's consumer group
	txid  string // its transactional id
	table string // the table topic it reads
	// relayed are, by table partition and key, the position of the last
	// state whose outbox a committed transaction published.
	relayed map[int32]map[string]change.Position
}

func (p *Processor) newRelay() *relay {
	group := engine.RelayGroup(p.group)
	txid := group
	if p.cfg.Instance != "" {
		txid += "-" + p.cfg.Instance
	}
	return &relay{p: p, group: group, txid: txid, table: engine.TableTopic(p.group), relayed: map[int32]map[string]change.Position{}}
}

// run relays until ctx ends (it returns nil) or Kafka fails in a way a retry
// cannot mend (it returns the error, which stops the processor). Every
// transaction it begins it ends: committed, or aborted on any error and when
// ctx ends.
func (r *relay) run(ctx context.Context) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(r.p.cfg.Brokers...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.table),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		// A killed relay's partitions move on after 10s (Kafka's default
		// minimum is 6s). No static membership: a stopped processor
		// leaves the group, so that reset finds it empty.
		kgo.SessionTimeout(10 * time.Second),
		kgo.TransactionalID(r.txid),
		kgo.TransactionTimeout(30 * time.Second),
		// Events keyed by aggregate id, partitioned as goka and Kafka do
		// (murmur2), as the processor's own emits were.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}, r.p.cfg.KafkaOptions...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("event relay: kafka client: %w", err)
	}
	defer sess.Close()
	// Fences an earlier relay of the same transactional id (its open
	// transaction is aborted) before anything is read.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("event relay: initialize transactional producer %s: %w; transactions need a broker with transaction.state.log.replication.factor <= its broker count", r.txid, err)
	}
	r.p.cfg.Logger.Info("event relay running", "topology", r.p.topo.Name, "table", r.table, "group", r.group, "transactional_id", r.txid)
	for {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("event relay: read %s: %w", r.table, err)
		}
		if fs.Empty() {
			continue
		}
		if err := r.relay(ctx, sess, fs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return r.explain(err)
		}
	}
}

// relay publishes the outboxes of the states fs holds and commits their
// offsets, in one transaction, which it always ends. A transaction aborted
// because the group rebalanced is not an error: the session rewinds to the
// committed offsets, and what it held is read again.
func (r *relay) relay(ctx context.Context, sess *kgo.GroupTransactSession, fs kgo.Fetches) error {
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	recs, pending, err := r.outboxes(fs)
	if err == nil && len(recs) > 0 {
		err = sess.ProduceSync(ctx, recs...).FirstErr()
		if err != nil {
			err = fmt.Errorf("produce %d events: %w", len(recs), err)
		}
	}
	how := kgo.TryCommit
	if err != nil {
		how = kgo.TryAbort
	}
	// The transaction ends even when ctx has ended: an open one would
	// hold read_committed readers of the event topics back until it times
	// out.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relayEndTimeout)
	defer cancel()
	committed, endErr := sess.End(ectx, how)
	if err != nil {
		return errors.Join(err, endErr)
	}
	if endErr != nil {
		return fmt.Errorf("end transaction: %w", endErr)
	}
	if !committed {
		r.p.cfg.Logger.Info("event relay: transaction aborted by a rebalance; relaying again from the committed offsets", "topology", r.p.topo.Name)
		return nil
	}
	for part, keys := range pending {
		if r.relayed[part] == nil {
			r.relayed[part] = map[string]change.Position{}
		}
		for k, pos := range keys {
			r.relayed[part][k] = pos
		}
	}
	return nil
}

// outboxes returns the event records of the states fs holds, in order, and
// by partition and key the position of the last state among them: those
// the relay has published once it commits.
func (r *relay) outboxes(fs kgo.Fetches) ([]*kgo.Record, map[int32]map[string]change.Position, error) {
	var recs []*kgo.Record
	pending := map[int32]map[string]change.Position{}
	var err error
	fs.EachRecord(func(rec *kgo.Record) {
		if err != nil || rec.Value == nil { // a deleted row state: no events
			return
		}
		var st engine.RowState
		if uerr := json.Unmarshal(rec.Value, &st); uerr != nil {
			err = fmt.Errorf("%w: decode row state of key %q at %s/%d offset %d: %w", engine.ErrState, rec.Key, rec.Topic, rec.Partition, rec.Offset, uerr)
			return
		}
		key := string(rec.Key)
		last, seen := pending[rec.Partition][key]
		if !seen {
			last, seen = r.relayed[rec.Partition][key]
		}
		if seen && st.Position.Compare(last) <= 0 {
			return // the same state written twice
		}
		if pending[rec.Partition] == nil {
			pending[rec.Partition] = map[string]change.Position{}
		}
		pending[rec.Partition][key] = st.Position
		for _, e := range st.Outbox {
			recs = append(recs, &kgo.Record{Topic: e.Topic, Key: []byte(e.Key), Value: e.Value,
				Headers: []kgo.RecordHeader{{Key: HeaderEventID, Value: []byte(e.ID)}}})
		}
	})
	return recs, pending, err
}

// HeaderEventID is the header of an event record that holds the event's
// deterministic id (the id its value carries too).
const HeaderEventID = "cdcflow.event.id"

// fetchErr returns the fetch errors of fs that are not the end of the
// poll's context, joined.
func fetchErr(fs kgo.Fetches) error {
	var errs []error
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
			continue
		}
		errs = append(errs, fmt.Errorf("topic %s partition %d: %w", fe.Topic, fe.Partition, fe.Err))
	}
	return errors.Join(errs...)
}

// explain wraps err, a relay failure, saying what it means and what to do.
func (r *relay) explain(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.FencedInstanceID) {
		return fmt.Errorf("event relay %s: another processor started with the same transactional id and took over: %w; processors sharing group %s each need their own Config.Instance", r.txid, err, r.p.group)
	}
	return fmt.Errorf("event relay %s: %w; its transaction was aborted and no event of it published: restart the processor to relay from the last committed offsets", r.txid, err)
}

// keepForever sets retention.ms=-1 on the event topic topic if it holds 0:
// the value earlier versions created event topics with (meaning to keep
// them forever), under which Kafka deletes the events within minutes. A
// retention set to anything else is left as it is.
func (p *Processor) keepForever(ctx context.Context, topic string) error {
	if p.cfg.Tester != nil {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.cfg.Brokers...)}, p.cfg.KafkaOptions...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	described, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe the configuration of event topic %s: %w", topic, err)
	}
	rc, err := described.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe the configuration of event topic %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key != "retention.ms" || c.MaybeValue() != "0" {
			continue
		}
		forever := "-1"
		altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &forever}}, topic)
		if err == nil {
			var r kadm.AlterConfigsResponse
			if r, err = altered.On(topic, nil); err == nil {
				err = r.Err
			}
		}
		if err != nil {
			return fmt.Errorf("event topic %s has retention.ms=0, so Kafka deletes its events; setting it to -1 (forever) failed: %w; set it with kafka-configs --alter --add-config retention.ms=-1", topic, err)
		}
		p.cfg.Logger.Warn("event topic had retention.ms=0 (Kafka deleted its events within minutes); set it to -1, forever", "topology", p.topo.Name, "topic", topic)
	}
	return nil
}
