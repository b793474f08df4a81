package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// The names of what the processors keep in Kafka for a topology run under a
// consumer group (processors.Config.Group, by default the topology's name).
// A goka group g keeps its table in the compacted topic g-table and loops
// messages back to itself through g-loop.

// ReadModelGroup is the consumer group of a read model's model stage; its
// table holds the documents.
func ReadModelGroup(group, model string) string { return group + "-" + model }

// JoinGroup is the consumer group of a read model's join stage; its table
// holds who belongs to whom (a child's root, a referenced row's referrers).
func JoinGroup(group, model string) string { return group + "-" + model + "-join" }

// UpdatesTopic is the topic the join stage sends the model stage the rows of
// each document on.
func UpdatesTopic(group, model string) string { return group + "-" + model + "-updates" }

// GateGroup is the consumer group of a consistent read model's gate; its
// table holds the transactions in flight (see Credit).
func GateGroup(group, model string) string { return group + "-" + model + "-gate" }

// EndsGroup is the consumer group that sends a consistent read model's gate
// the END records of the transaction topic.
func EndsGroup(group, model string) string { return group + "-" + model + "-ends" }

// GateTopic is the one-partition topic a consistent read model's stages
// send its gate their credit and documents on.
func GateTopic(group, model string) string { return group + "-" + model + "-gate-in" }

// ConsistentTopic is the compacted one-partition topic a consistent read
// model's gate publishes complete transactions' documents to: each
// document keyed by its root key, then a commit marker (CommitKey).
func ConsistentTopic(group, model string) string { return group + "-" + model + "-consistent" }

// CommitKey is the key of the commit markers on a consistent topic: a key
// no root key function makes (it starts with a NUL byte).
const CommitKey = "\x00commit"

// ProjectionGroup is the consumer group of a projection; its table holds the
// states.
func ProjectionGroup(group, projection string) string { return group + "-" + projection }

// TableTopic is the compacted topic of a goka group's table.
func TableTopic(group string) string { return group + "-table" }

// LoopTopic is the topic a goka group loops messages back to itself on.
func LoopTopic(group string) string { return group + "-loop" }

// RowIdentity names a row of the change topic topic by its key columns: the
// topic, then each key column as name=value, in name order, joined by '|'
// ("cdcflow.public.orders|id=7"). A metrics topology keeps each row's
// contribution under it in Redis (<prefix>:<topology>:rows).
func RowIdentity(topic string, key change.Row) string {
	return topic + "|" + strings.Join(keyColumns(key), "|")
}

// ChildKey names a child row of a read model by its key columns, name=value
// in name order, joined by ',' ("id=7", "line=2,order_id=7"): a document's
// child rows are applied in the order of these names.
func ChildKey(key change.Row) string { return strings.Join(keyColumns(key), ",") }

func keyColumns(key change.Row) []string {
	names := slices.Sorted(maps.Keys(key))
	cols := make([]string, len(names))
	for i, n := range names {
		cols[i] = fmt.Sprintf("%s=%v", n, key[n])
	}
	return cols
}

// RelayGroup is the consumer group, and the stem of the transactional id,
// of the relay that publishes the events outboxed in the group table of
// the goka group group (its Events nodes' row states).
func RelayGroup(group string) string { return group + "-outbox-relay" }
