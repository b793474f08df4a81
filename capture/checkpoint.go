package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Checkpoint is what capture commits to Kafka with every transaction of
// change records: where it got to. Position is the last change published;
// Confirm is the end LSN of the last source transaction whose changes were
// all published, the furthest the slot may be confirmed to.
type Checkpoint struct {
	Position change.Position `json:"position"`
	Confirm  change.LSN      `json:"confirm_lsn"`
	// LastCommit is the end LSN of the last source transaction read, the
	// first LSN of the next change's source.sequence (Debezium's lsn_commit
	// offset); 0 before the first.
	LastCommit change.LSN `json:"last_commit_lsn,omitempty"`
	// Snapshot is nil until capture starts a snapshot.
	Snapshot *SnapshotState `json:"snapshot,omitempty"`
	// Incremental is how far the incremental snapshots got; nil when none
	// is pending.
	Incremental *IncrementalState `json:"incremental,omitempty"`
	// LastSignal is the position of the last signal capture acted on: one
	// PostgreSQL sends again after a restart is not acted on twice.
	LastSignal *change.Position `json:"last_signal,omitempty"`
	// SlotLost is set while capture recovers from the loss of its slot:
	// from the moment it found the slot gone until the deletes the new
	// slot cannot show are published and the incremental snapshot of every
	// table is planned. A restart in between starts the recovery over.
	SlotLost *SlotLoss `json:"slot_lost,omitempty"`
}

// SnapshotState is how far the snapshot of the tables' existing rows got.
type SnapshotState struct {
	// Tables maps every table whose snapshot was started to the LSN it was
	// taken at: its changes committed before that LSN are in the snapshot,
	// the others are streamed.
	Tables map[string]change.LSN `json:"tables"`
	// Pending lists the tables whose snapshot has not finished; a restart
	// reads them again, the others never.
	Pending []string `json:"pending,omitempty"`
}

// Complete reports whether every table's snapshot finished.
func (s *SnapshotState) Complete() bool { return s != nil && len(s.Pending) == 0 }

// ensureCheckpointTopic creates the compacted, single-partition checkpoint
// topic unless it exists.
func ensureCheckpointTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create checkpoint topic %s: %w", topic, err)
	}
	return nil
}

// ReadCheckpoint returns the last committed checkpoint of the capture with
// topic prefix prefix and slot slot, stored in topic, and false when there is
// none. It reads with read_committed isolation up to the
// topic's last stable offset, so it sees exactly the checkpoints whose
// transactions committed. The caller must have fenced earlier producers with
// the same transactional id first, or an open transaction of a crashed
// capture holds the last stable offset back until it times out. opts are
// the franz-go options of the connection (TLS, SASL), as in
// Config.KafkaOptions.
func ReadCheckpoint(ctx context.Context, brokers []string, topic, prefix, slot string, opts ...kgo.Opt) (Checkpoint, bool, error) {
	return readCheckpoint(ctx, brokers, opts, topic, checkpointKey(prefix, slot))
}

func checkpointKey(prefix, slot string) string { return prefix + "/" + slot }

func readCheckpoint(ctx context.Context, brokers []string, opts []kgo.Opt, topic, key string) (Checkpoint, bool, error) {
	var last Checkpoint
	var found bool
	err := scanTopic(ctx, brokers, opts, topic, func(r *kgo.Record) {
		if string(r.Key) != key || r.Value == nil {
			return
		}
		var c Checkpoint
		if err := json.Unmarshal(r.Value, &c); err == nil {
			last, found = c, true
		}
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read checkpoint topic %s: %w", topic, err)
	}
	return last, found, nil
}

// scanTopic calls fn with every record of topic that a read_committed
// consumer sees, partition by partition in offset order, up to the
// partitions' last stable offsets when it starts.
func scanTopic(ctx context.Context, brokers []string, opts []kgo.Opt, topic string, fn func(*kgo.Record)) error {
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	stable, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return fmt.Errorf("list stable offsets: %w", err)
	}
	ends := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	var lookupErr error
	stable.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lookupErr = o.Err
		}
		if o.Topic == topic && o.Offset > 0 {
			ends[o.Partition], start[o.Partition] = o.Offset, kgo.NewOffset().AtStart()
		}
	})
	if lookupErr != nil {
		return fmt.Errorf("list stable offsets: %w", lookupErr)
	}
	if len(ends) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(ends) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if !ok {
				return // read to its end already
			}
			if r.Offset >= end-1 {
				delete(ends, r.Partition)
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				fn(r)
			}
		})
	}
	return nil
}
