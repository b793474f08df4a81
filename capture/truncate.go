package capture

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// skippableOps are the operations Config.SkippedOperations may name, as
// Debezium's skipped.operations.
var skippableOps = []change.Op{change.OpCreate, change.OpUpdate, change.OpDelete, change.OpTruncate}

// ParseSkippedOperations reads Debezium's skipped.operations: a
// comma-separated list of c, u, d and t, or "none" for none (an empty,
// non-nil slice). An empty s is the default, truncates only.
func ParseSkippedOperations(s string) ([]change.Op, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return []change.Op{change.OpTruncate}, nil
	case "none":
		return []change.Op{}, nil
	}
	var ops []change.Op
	for _, part := range strings.Split(s, ",") {
		op, err := change.ParseOp(strings.TrimSpace(part))
		if err != nil || !slices.Contains(skippableOps, op) {
			return nil, fmt.Errorf("skipped operation %q is not one of c, u, d, t (or none)", strings.TrimSpace(part))
		}
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// skips reports whether Config.SkippedOperations leaves op out.
func (a *assembler) skips(op change.Op) bool { return slices.Contains(a.cfg.SkippedOperations, op) }

// truncate assembles a Truncate message: one op "t" event per captured
// table it names, as Debezium emits one per truncated table, with no
// before and no after, at the next position of the transaction.
func (a *assembler) truncate(lsn change.LSN, m *pglogrepl.TruncateMessage) ([]output, error) {
	if a.tx == nil {
		return nil, fmt.Errorf("truncate at %s outside a transaction", lsn)
	}
	var out []output
	for _, id := range m.RelationIDs {
		rel, ok := a.relations[id]
		if !ok {
			return nil, fmt.Errorf("truncate at %s of relation %d that pgoutput never described", lsn, id)
		}
		t := rel.pub
		if !a.want[t.String()] {
			continue
		}
		out = a.event(out, t, lsn, change.OpTruncate, nil, nil, rawChange{Schema: t.Schema, Table: t.Name, Op: change.OpTruncate.String()})
	}
	return out, nil
}

// produceTruncate produces a truncate, which has no key, to every partition
// of its topic: a consumer of one partition then sees it in order with the
// changes of the rows that partition holds (Debezium writes a single record,
// whose order against the other partitions' changes nobody can tell). With
// one partition, the Kafka default, the topic holds what Debezium writes.
func (c *Capture) produceTruncate(ctx context.Context, pos change.Position, rec serde.Encoded) error {
	n, err := c.partitionCount(ctx, rec.Topic)
	if err != nil {
		return err
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: rec.Topic, Value: rec.Value, Partition: int32(i)}
	}
	return c.pub.produceRecords(ctx, pos, recs, 1)
}

// partitionCount returns the number of partitions of topic, asking Kafka the
// first time.
func (c *Capture) partitionCount(ctx context.Context, topic string) (int, error) {
	if n, ok := c.partitions[topic]; ok {
		return n, nil
	}
	details, err := kadm.NewClient(c.kafka).ListTopics(ctx, topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	n := len(details[topic].Partitions)
	if n == 0 {
		return 0, fmt.Errorf("topic %s has no partitions", topic)
	}
	if c.partitions == nil {
		c.partitions = map[string]int{}
	}
	c.partitions[topic] = n
	return n, nil
}

// truncatePartitioner places a record without a key, which capture only
// produces for truncates (produceTruncate), in the partition it names, and
// every other record as franz-go's default partitioner does (by the hash of
// its key, as Kafka's Java client does).
func truncatePartitioner() kgo.Partitioner {
	return manualForNilKeys{kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

type manualForNilKeys struct{ base kgo.Partitioner }

func (p manualForNilKeys) ForTopic(topic string) kgo.TopicPartitioner {
	return &manualForNilKeysTopic{base: p.base.ForTopic(topic)}
}

type manualForNilKeysTopic struct{ base kgo.TopicPartitioner }

func (p *manualForNilKeysTopic) RequiresConsistency(r *kgo.Record) bool {
	return r.Key == nil || p.base.RequiresConsistency(r)
}

func (p *manualForNilKeysTopic) Partition(r *kgo.Record, n int) int {
	if r.Key == nil {
		return int(r.Partition)
	}
	return p.base.Partition(r, n)
}

func (p *manualForNilKeysTopic) PartitionByBackup(r *kgo.Record, n int, backup kgo.TopicBackupIter) int {
	if r.Key == nil {
		return int(r.Partition)
	}
	if b, ok := p.base.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, backup)
	}
	return p.base.Partition(r, n)
}

func (p *manualForNilKeysTopic) OnNewBatch() {
	if b, ok := p.base.(kgo.TopicPartitionerOnNewBatch); ok {
		b.OnNewBatch()
	}
}
