// Package capture reads PostgreSQL logical replication (the pgoutput plugin)
// and publishes Debezium-compatible change envelopes to Kafka.
//
// A [Capture] makes sure the publication and the replication slot exist,
// streams committed transactions, turns every row change into a
// [change.Event], encodes it with a [serde.Encoder] and produces it to the
// topic <prefix>.<schema>.<table>, keyed by the row's primary key. The slot's
// confirmed position is advanced only up to the end of the last transaction
// whose records Kafka acknowledged in full, so a crash never loses a change.
package capture
