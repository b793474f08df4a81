// Package change defines the values every other cdcflow package agrees on: a
// change [Event] in the shape of a Debezium change envelope, its [Op] code, the
// [LSN] of the write-ahead log and the [Position] that orders changes.
//
// Positions are totally ordered per replication slot: first by the commit LSN
// of the transaction a change belongs to, then by the change's index within
// that transaction. Everything downstream compares positions, never wall-clock
// time, to decide whether a change was already applied.
//
// This package imports only the standard library.
package change
