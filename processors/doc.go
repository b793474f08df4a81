// Package processors runs topologies: it turns a [topologies.Topology] into a
// goka processor, connects its sinks and applies every change idempotently,
// so that a replayed or redelivered change leaves every sink unchanged.
//
// # A processor
//
// [NewProcessor] validates the topology and the [Config] together, reporting
// every problem at once (errors name the Config fields), and declares the
// topology's goka groups: its own (named after the topology unless
// Config.Group says otherwise), with one input per change topic its
// Metrics, Events and Index nodes read (each record decoded once and handed
// to each of them), and one or two per read model and projection. It
// connects to nothing. [Processor.Run] creates the topics the topology
// writes and its search indexes, then runs the groups until its context ends
// (it returns nil) or one fails (all stop). [Processor.Ready] tells when the
// processor has caught up with its inputs. Changes are read with
// read_committed, so aborted capture transactions are never seen, and in
// order per key: per row.
//
// # Node kinds and their sinks
//
//   - A Metrics node writes to Redis (package redismetrics): one hash per series
//     (a sorted set for a ranked one) under <prefix>:<topology>:<series>.
//     A Lua script stores, per row, the position of the last applied change
//     and what that version of the row contributed, moves every series by
//     the difference and refuses a change at or before the stored position,
//     atomically. Each applied change is announced on
//     redismetrics.Store.Channel. Changes are written in batches, up to 500
//     in one pipeline, each record committed once its change is written; a
//     stop writes what was handed over before committing it. A Redis write
//     that fails is retried for Config.RetryTimeout; then the processor
//     stops with the error, leaving the change, and every change after it,
//     uncommitted.
//   - An Events node keeps, per row, the position of the last change it
//     derived events from and the row as of it, in its goka group table;
//     it derives each later change with that row as Before, and keeps the
//     events, Avro-encoded (Config.Encoder), in the same row state (its
//     outbox). A relay (consumer group "<Group>-outbox-relay") reads the
//     group table topic and produces them to the node's event topic, keyed
//     by aggregate id, in the Kafka transaction that commits its offsets:
//     each event is published exactly once, as a read_committed consumer
//     sees it, across any crash. Consumers of event topics must read with
//     read_committed. A relay that cannot go on stops the processor. A
//     change whose row does not fit the node's row type, or whose events
//     cannot be encoded, goes to the dead-letter topic.
//   - An Index node writes to Elasticsearch (package searchindex) with the
//     change's position as external version (searchindex.Version), so that
//     Elasticsearch itself refuses a change it already holds, or an older
//     one. Documents are written in bulk requests of up to 500 changes,
//     each record committed once its document is written. A change that
//     cannot be indexed goes, after retries if Elasticsearch is
//     unreachable, to the dead-letter topic
//     (Config.DeadLetterTopic, with the headers [HeaderError] and others)
//     and the processor goes on.
//
// [Processor.Stats] counts the changes handled, the duplicates the sinks
// refused and the dead letters; Config.Metrics exports the same counts, and
// the retries, to Prometheus.
//
// # Bad records
//
// Every input is read as bytes and decoded in the processor's callbacks, not
// in a goka codec (a codec error fails the partition, and goka would stop on
// the same record after every restart). A record that cannot be read — not
// in the Confluent wire format, a schema id the registry does not know,
// truncated or invalid Avro, no key, a key that does not decode or is not
// the key of the row it carries, a change of another table than the topic's
// — goes to the dead-letter topic (Config.DeadLetterTopic) with its key, its
// value and the headers [HeaderError], [HeaderTopic], [HeaderPartition],
// [HeaderOffset] and [HeaderGroup]; the processor commits past it and goes
// on. A schema registry that cannot be asked is not a bad record:
// [serde.ErrRegistryUnavailable] is waited out with exponential backoff, for
// as long as it lasts, so that a good record is never dead-lettered because
// a service blinked. When the processor stops while it waits, the record is
// left uncommitted.
//
// # Testing
//
// A topology is unit-tested without any of this with package
// topologies/topotest, which mirrors these rules in memory (and is held to
// them by this package's tests). A processor itself runs on goka's tester
// through Config.GokaOptions (goka.WithTester), with real or in-process
// sinks.
package processors
