// Package topologies is the declarative API users write stream processors
// with. A topology is a plain value: it names the change topics it reads,
// what each row contributes to its sinks, and nothing else. Building one does
// no I/O, so it can be validated, printed and unit-tested before anything
// connects; package processors runs it on goka.
//
// # Tables and rows
//
// [TableOf] declares a captured table and the Go struct its rows are read
// into: TableOf[Order]("shop", "public", "orders") reads the topic
// shop.public.orders that capture writes. A field maps to the column named by
// its `cdc:"column"` tag, or to its name in snake_case (CustomerID reads
// customer_id); `cdc:"-"` and unexported fields are skipped. A column reads
// into a field of its own Go type (see change.Row) or of a compatible one:
// any signed integer or float type, a type defined on string, a *big.Rat for
// numeric and money columns however decimal.handling.mode made them travel,
// a time.Duration for an interval. A pointer field reads NULL as nil; any
// other field reads NULL, or a column the row lacks, as its zero value. A
// column whose value the source did not send (an unchanged TOASTed value)
// fails the change with an error that says how to fix it, instead of being
// read as data. [Table.Row] goes the other way: the row capture would send
// for a value, which tests use to feed typed rows.
//
// # Changes
//
// A [Change] is one change to one row: its [change.Op] (insert, update,
// delete, snapshot read), the row Before and After it, its source block and
// its [change.Position]. Positions order the changes of a replication slot:
// by the commit LSN of their transaction, then by their index in it.
// Everything downstream compares positions, never clocks.
//
// # Nodes
//
// A [Topology] is a name and a list of nodes:
//
//   - [Metrics] keeps metrics over a table's current rows: a function
//     tells what one row contributes ([Sample]: a value for a bucket of a
//     series, optionally ranked or expiring), and every change moves the
//     metrics by the difference between what the row's new and previous
//     versions contribute, so that they always equal the function summed
//     over the table. The processor keeps them in Redis.
//   - [Events] derives domain events ([Event]: type, aggregate id, flat
//     data) from a table's changes and emits them to an event topic. The
//     derive function sees the row's previous version as Before even when
//     the source sent none (REPLICA IDENTITY DEFAULT), so status
//     transitions can be read from Before and After.
//   - [Index] keeps a search index with one document per row, written on
//     insert and update, deleted on delete. The processor keeps it in
//     Elasticsearch.
//   - [ReadModel] keeps one document per row of a [Root] table, joined with
//     the rows of [Children] tables that point at it and of [Reference]
//     tables it points at (an order with its line items and its customer),
//     in goka group tables; a change to a referenced row reaches every
//     document that references it.
//   - [IndexReadModel] keeps a search index of a read model's documents,
//     versioned by their [ModelState.Revision].
//   - [Projection] folds the events of a domain-event topic ([EventTopicOf])
//     into a state per key, and can be rebuilt from the topic alone.
//
// A topology reads each change topic with at most one Metrics, Events or
// Index node (read models and projections run as consumer groups of their
// own). Its name names the processor's
// state (the Redis keys of its metrics, say) and, unless configured
// otherwise, its consumer group: renaming a topology starts it afresh.
//
// # Idempotency
//
// Kafka delivers at least once and topics are replayed, so every node
// applies a change at most once per row, by position: the processors keep,
// per row, the position of the last change they applied, and a change at or
// before it changes nothing. Metrics store it next to the series, events in
// the processor's group table, search documents as their external version.
// An event's id is deterministic ([EventID] of the change's position, the
// aggregate and the type), so consumers can deduplicate too. The functions a
// topology is built from must therefore be pure functions of their input.
//
// # Validation and printing
//
// Constructors never fail: a mistake (a row type that is not a struct, a
// nil function, an index name Elasticsearch refuses) is kept in the node,
// and [Topology.Validate] reports every mistake of every node at once, as
// one error. processors.NewProcessor validates before it connects to
// anything. [Topology.String] describes the topology, one line per node.
//
// # Testing a topology
//
// The node methods the processors call ([MetricsNode.Measure],
// [EventsNode.Derive], [IndexNode.Document]) can be called from a test
// directly. Package topologies/topotest runs a whole topology in memory
// with the processors' rules: feed it typed inserts, updates, deletes and
// snapshot reads, deliver some of them again, and read the metrics, events,
// documents, read models and projection states the processors would have
// written, without Kafka, Redis or Elasticsearch.
package topologies
