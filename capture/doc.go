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
//
// An unavailable schema registry does not stop capture. A table's schema is
// registered with its first change, and again after an ALTER TABLE; while
// the registry cannot be reached, capture commits what it produced, stops
// reading the slot (it goes on confirming to PostgreSQL, so the walsender
// does not time out) and retries the encoding with backoff, from 100ms up to
// 5s, for however long it takes, logging each attempt and counting it in
// cdcflow_capture_retries_total{service="registry"}. Nothing is produced
// before it is encoded, so nothing is produced twice; Run still returns as
// soon as its context ends. A snapshot waits the same way.
//
// Incremental snapshots read tables again while capture streams (Debezium's
// execute-snapshot signal, after DBLog): chunk by chunk in key order, each
// read by a transaction whose snapshot is the chunk's low watermark and
// which writes its high watermark into the WAL. Rows a newer change touched
// are dropped at the high watermark, the others published as reads marked
// "incremental", with the checkpoint that records the chunk in the same
// Kafka transaction: a restart goes on after the last chunk. Signals are
// rows inserted into Config.SignalTable, or sent with [Capture.Signal];
// [Capture.IncrementalSnapshots] reports progress.
//
// A slot that is gone, or that PostgreSQL invalidated, stops Run with
// [ErrSlotLost], except in [SnapshotWhenNeeded], which creates a new slot,
// publishes the deletes the new slot cannot show and reads every table
// again with an incremental snapshot while streaming.
//
// Truncates are left out unless Config.SkippedOperations, Debezium's
// skipped.operations, says otherwise; then each truncated table gets an op
// "t" event with a null key, written to every partition of its topic so
// that each partition's consumers see it in order with their rows' changes.
//
// A running Capture can be steered ([Capture.Pause], [Capture.Resume],
// [Capture.Restart]) and watched ([Capture.Status], [Capture.Tables]) from
// other goroutines: the admin API does it over HTTP. Paused, the loop
// commits what it produced and stops reading the slot but keeps confirming
// to PostgreSQL. Restarted, it commits, confirms, reconnects and resumes
// from its checkpoint within the same Run; it also restarts so when a table
// created since it started matches a pattern of Config.Tables
// (Config.TableRefreshInterval): the table is added to the publication,
// snapshotted and streamed.
//
// Inside, the package is layered: an assembler turns pgoutput messages into
// events, transaction records, messages and dead letters with no I/O (its
// golden tests replay pgoutput streams recorded from PostgreSQL, in
// testdata); the replication loop feeds it and emits what it returns; the
// publisher writes it to Kafka in transactions with the checkpoint.
//
// Capture fills the envelope as Debezium 3.6's PostgreSQL connector does
// (the serde package documents the shapes): source.lsn is the change's own
// LSN; source.sequence holds the end LSN of the last commit read before it
// (kept in the [Checkpoint] across restarts, as Debezium keeps it in its
// offsets) and the change's LSN; transaction.id is "<txId>:<LSN of the
// change>", and the transaction topic's BEGIN and END records name the LSNs of
// the BEGIN and of the transaction's end; source.origin and origin_lsn come
// from pgoutput's Origin message; snapshot reads are marked first,
// first_in_data_collection, last_in_data_collection, last or true. The
// position of a change, (commit LSN, index in its transaction), travels in
// transaction.commit_lsn and total_order.
package capture
