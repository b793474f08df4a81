// Package app turns topology functions into a processor binary. A user's
// main.go is about this:
//
//	package main
//
//	import (
//		"github.com/cdcflow/cdcflow/app"
//		"example.com/shop/topology"
//	)
//
//	func main() {
//		app.Main(topology.Orders, topology.Customers)
//	}
//
// where each topology function takes the [Source] the tables were captured
// from (a topic prefix and a schema) and returns a [topologies.Topology].
//
// [Main] parses the standard settings ([Flags]: Kafka with TLS and SASL, the
// schema registry, Redis, Elasticsearch, the consumer group prefix, the
// source's topic prefix and schema, the HTTP address, the log level) from
// flags, CDCFLOW_* environment variables and an optional YAML file (flags
// win over the environment, which wins over the file), validates them
// against what the topologies need, and runs every topology's processor
// until SIGTERM or SIGINT: then each finishes the change in hand, commits,
// and the binary exits 0. A problem with the settings, or a service the
// binary cannot reach, ends it with one line that names the problem and the
// fix, and exit status 1.
//
// On the HTTP address it serves:
//
//	GET /healthz                       200 while the binary runs
//	GET /readyz                        200 once every processor and view caught up, 503 before
//	GET /metrics                       Prometheus metrics of the processors, the views and the Go runtime
//	GET /read-models/{name}/{key}      a read model's document, as JSON (404 while there is none)
//	GET /projections/{name}/{key}      a projection's state, as JSON
//	GET /dashboard/                    the realtime dashboard (package dashboard) and its API
//
// one read-model and projection route per read model and projection of the
// topologies. No password or other secret given in the settings reaches a
// log line or an error.
//
// Running is the binary's default command, run; the others share its
// settings and know its topologies' consumer groups and sinks:
//
//	status   the replication slot and capture's checkpoint (with --pg-dsn),
//	         each consumer group's lag in records and in the age of its
//	         oldest unread record, the topics and the dead letters, as a
//	         table or --json; exit 1 when the slot is inactive or a lag
//	         exceeds --max-lag (a probe for cron or Kubernetes)
//	verify   reads the source tables' current rows (--pg-dsn), makes what
//	         each Metrics, Index, ReadModel and IndexReadModel node would
//	         keep of them, and compares it with Redis, the read models'
//	         goka tables and the search indexes, printing the differences
//	         by key; exit 1 on a difference. Events and projections follow
//	         from the history of changes, not from current rows, and are
//	         reported as not verifiable.
//	reset    deletes what the named topologies keep (their consumer groups,
//	         table and internal topics, Redis keys, search indexes, local
//	         state) once they are stopped, after a confirmation (--yes), so
//	         that their next run rebuilds it from the start of their inputs
//
// [RunStatus] is the status command of a binary without topologies
// (cmd/cdcflow's), over consumer groups named or listed by prefix.
package app
