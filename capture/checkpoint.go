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
	// Snapshot is nil until capture starts a snapshot.
	Snapshot *SnapshotState `json:"snapshot,omitempty"`
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
// capture holds the last stable offset back until it times out.
func ReadCheckpoint(ctx context.Context, brokers []string, topic, prefix, slot string) (Checkpoint, bool, error) {
	return readCheckpoint(ctx, brokers, topic, checkpointKey(prefix, slot))
}

func checkpointKey(prefix, slot string) string { return prefix + "/" + slot }

func readCheckpoint(ctx context.Context, brokers []string, topic, key string) (Checkpoint, bool, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return Checkpoint{}, false, err
	}
	stable, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("list stable offsets of %s: %w", topic, err)
	}
	end, ok := stable.Lookup(topic, 0)
	if !ok || end.Err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint topic %s has no partition 0: %v", topic, end.Err)
	}
	if end.Offset == 0 {
		return Checkpoint{}, false, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return Checkpoint{}, false, err
	}
	defer cl.Close()
	var last Checkpoint
	var found bool
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Checkpoint{}, false, fmt.Errorf("read checkpoint topic %s: %w", topic, err)
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return Checkpoint{}, false, fmt.Errorf("read checkpoint topic %s: %w", topic, fetchErr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end.Offset-1 {
				done = true
			}
			if r.Attrs.IsControl() || string(r.Key) != key || r.Value == nil {
				return
			}
			var c Checkpoint
			if err := json.Unmarshal(r.Value, &c); err == nil {
				last, found = c, true
			}
		})
		if done {
			return last, found, nil
		}
	}
}
