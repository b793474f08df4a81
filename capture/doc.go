// Package capture reads PostgreSQL logical replication (the pgoutput plugin)
// and publishes Debezium-compatible change envelopes to Kafka.
//
// A [Capture] makes sure the publication and the replication slot exist,
// streams committed transactions, turns every row change into a
// [change.Event], encodes it with a [serde.Encoder] and produces it to the
// topic <prefix>.<schema>.<table>, keyed by the row's primary key.
//
// Publication is exactly once. Change records and a [Checkpoint] (the
// position reached) are written in one Kafka transaction; on start capture
// fences its predecessor, reads the last committed checkpoint and drops what
// PostgreSQL sends again up to it. The slot is confirmed only up to the end of
// the last source transaction whose changes are all committed in Kafka, so a
// crash, even kill -9, neither loses nor duplicates a change for consumers
// that read with read_committed.
package capture
