// Package inspect reads the state of a cdcflow deployment for its operators'
// commands (status, verify, reset): a replication slot as PostgreSQL reports
// it ([ReadSlot]), consumer groups, their lag and the records of topics
// ([Kafka]), and a status [Report] with its health checks ([Threshold]),
// printed as aligned text or JSON.
//
// Lag is counted in records, not offsets: capture writes in Kafka
// transactions, whose commit markers take offsets that no consumer ever
// reads, so that the difference between a group's committed offset and the
// end of a partition overstates what is left to read (by one offset per
// transaction, often more than the records themselves). [Kafka] reads the
// unconsumed records with read_committed isolation and counts them, and
// takes the age of the lag from the oldest of them; past a bound it counts
// offsets instead, and says so ([Lag.Exact]).
package inspect
