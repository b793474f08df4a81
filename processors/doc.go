// Package processors runs topologies: it turns a [topologies.Topology] into a
// goka processor, connects its sinks (Redis metrics, Elasticsearch search indexes) and applies every
// change idempotently, so that a replayed or redelivered change leaves every
// sink unchanged.
package processors
