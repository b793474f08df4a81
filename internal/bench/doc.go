// Package bench measures cdcflow next to its baselines against the real
// services, each scenario and its baseline in the same run:
//
//   - capture (the built cdcflow binary, with Avro, the schema registry and
//     Kafka transactions) vs pg_recvlogical on the same WAL range, a bulk
//     and an OLTP (pgbench) workload: changes/s;
//   - capture's initial snapshot vs COPY ... TO STDOUT: rows/s;
//   - a workload's topologies, each in a processor process of its own, vs a
//     bare franz-go consume-and-decode loop over the same topic: records/s;
//   - end to end, source commit to metric visible in Redis, p50 and p99 at
//     half the measured maximum rate;
//   - memory: capture's peak RSS through one large transaction (the run
//     fails above Sizes.RSSBoundMiB), the processors' RSS.
//
// Every scenario makes its own slot, publication, tables, topics, consumer
// groups, subjects and Redis keys under a fresh name and drops them after:
// the services are shared. tools/bench is the command (scripts/bench runs
// it); [Results] renders BENCHMARKS.md.
package bench
