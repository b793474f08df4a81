// Package topologies is the declarative API users write stream processors
// with. A topology is a plain value: it names the change topics it reads,
// the state it keeps and the sinks it feeds. It does no I/O, so it can be
// validated, printed and unit-tested before anything connects; package
// processors runs it on goka.
package topologies
