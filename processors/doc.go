// Package processors runs topologies: it turns a [topologies.Topology] into a
// goka processor, connects its sinks and applies every change idempotently,
// so that a replayed or redelivered change leaves every sink unchanged.
//
// # A processor
//
// [NewProcessor] validates the topology and the [Config] together, reporting
// every problem at once before it connects to anything, and builds one goka
// processor (one consumer group, named after the topology unless
// Config.Group says otherwise) with one input per node; goka looks up the
// input topics' partitions in Kafka there. [Processor.Run] blocks until its
// context ends (then it returns nil) or the processor fails. Changes are read with
// read_committed, so aborted capture transactions are never seen, and in
// order per key: per row.
//
// # Node kinds and their sinks
//
//   - A Metrics node writes to Redis ([RedisMetrics]): one hash per series
//     (a sorted set for a ranked one) under <prefix>:<topology>:<series>.
//     A Lua script stores, per row, the position of the last applied change
//     and what that version of the row contributed, moves every series by
//     the difference and refuses a change at or before the stored position,
//     atomically. Each applied change is announced on
//     [RedisMetrics.Channel]. A Redis write that fails is retried for
//     Config.RetryTimeout; then the processor stops with the error, leaving
//     the change uncommitted.
//   - An Events node keeps, per row, the position of the last change it
//     derived events from and the row as of it, in its goka group table;
//     it derives each later change with that row as Before, and emits the
//     events, Avro-encoded (Config.Encoder), to the node's event topic,
//     keyed by aggregate id. A change it cannot read, or an event it cannot
//     encode, stops the processor.
//   - An Index node writes to Elasticsearch ([SearchIndex]) with the
//     change's position as external version ([SearchVersion]), so that
//     Elasticsearch itself refuses a change it already holds, or an older
//     one. A change that cannot be indexed goes, after retries if
//     Elasticsearch is unreachable, to the dead-letter topic
//     (Config.DeadLetterTopic, with the headers [HeaderError] and others)
//     and the processor goes on.
//
// [Processor.Stats] counts the changes handled, the duplicates the sinks
// refused and the dead letters.
//
// # Testing
//
// A topology is unit-tested without any of this with package
// topologies/topotest, which mirrors these rules in memory (and is held to
// them by this package's tests). A processor itself runs on goka's tester
// through Config.GokaOptions (goka.WithTester), with real or in-process
// sinks.
package processors
