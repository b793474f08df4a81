// Package topologies is the declarative API users write stream processors
// with. A topology is a plain value: it names the change topics it reads,
// what each row contributes to its sinks, and nothing else. Building one does
// no I/O, so it can be validated, printed and unit-tested before anything
// connects; package processors runs it on goka.
//
// The package holds the user-facing side only: typed tables, rows, events
// and handles. The machinery that applies a change (the row state of an
// events node, a read model's stages, a projection's fold) is internal to
// cdcflow, shared by the processors and the topotest harness, so that both
// apply a change the same way.
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
//   - [Events] derives domain events from a table's changes and emits them
//     to an event topic. An [Event] is an aggregate id and its data, a flat
//     struct whose Go type names the event ([Event.Type]: an OrderPaid value
//     is an OrderPaid event); the topic is declared with the event types it
//     carries, one value of each ([EventTopicOf]), and a derived event of a
//     type the topic does not declare is an error: the processor sends the
//     change to its dead-letter topic. The derive function sees the row's
//     previous version as Before even when the source sent none (REPLICA
//     IDENTITY DEFAULT), so status transitions can be read from Before and
//     After.
//   - [Index] keeps a search index with one document per row, written on
//     insert and update, deleted on delete. The processor keeps it in
//     Elasticsearch.
//   - [ReadModel] keeps one document of type V per row of a [Root] table,
//     joined with the rows of [Children] tables that point at it and of
//     [Reference] tables it points at (an order with its line items and its
//     customer), in goka group tables; a change to a referenced row reaches
//     every document that references it. It runs in two stages: the join
//     stage keeps which document each child row belongs to and which
//     documents reference each referenced row, and sends each document the
//     rows it is made of; the model stage keeps those rows and builds the
//     document from them.
//   - [IndexReadModel] keeps a search index of a read model's documents:
//     its document function takes the read model's V. Each search document
//     is versioned by the read model's revision of it, a count of the
//     changes applied to the document's rows.
//   - [Projection] folds the events of a domain-event topic ([EventTopicOf])
//     into a state of type S per key, and can be rebuilt from the topic
//     alone. It has one handler per event type it folds ([On]): a key
//     function and a fold over [Recorded] events whose Data is a value of
//     that type, so no handler switches on types; events of the topic's
//     other types are skipped.
//
// Every constructor returns a handle of its own ([MetricsNode],
// [EventsNode], [IndexNode], [ReadModelNode], [ReadModelIndexNode],
// [ProjectionNode]), a [Node] of a topology. The handles of read models and
// projections keep their type parameter: [ReadModelNode.Document] decodes a
// document as a V and [ProjectionNode.State] a state as an S, and package
// topotest reads a harness's documents and states through them, typed. A
// handle's Engine method returns the node's runtime form, whose type is
// internal to cdcflow: a topology is built with this package's constructors
// only.
//
// Several nodes of a topology may read one change topic (metrics, events and
// a search index of the orders table, say): the processor decodes each
// record once and hands it to each. A topology has at most one Metrics and
// one Events node per table, since each keeps state per row (read models
// and projections run as consumer groups of their own). Its name names the processor's state (the Redis keys of its
// metrics, say) and, unless configured otherwise, its consumer group:
// renaming a topology starts it afresh.
//
// # Idempotency
//
// Kafka delivers at least once and topics are replayed, so every node
// applies a change at most once per row, by position: the processors keep,
// per row, the position of the last change they applied, and a change at or
// before it changes nothing. Metrics store it next to the series, events in
// the processor's group table, search documents as their external version,
// read models with every row a document is made of. A projection keeps, per
// aggregate, the position of the last event it folded. An event's id is deterministic ([EventID] of the change's position, the
// aggregate and the type), so consumers can deduplicate too. The functions a
// topology is built from must therefore be pure functions of their input.
//
// # Validation and printing
//
// Constructors never fail: a mistake (a row type that is not a struct, a
// nil function, an index name Elasticsearch refuses, a projection handler
// of an event type its topic does not declare, or two handlers of one type)
// is kept in the node, and [Topology.Validate] reports every mistake of
// every node at once, as one error. processors.NewProcessor validates
// before it connects to anything. [Topology.String] describes the
// topology, one line per node.
//
// # Testing a topology
//
// Package topologies/topotest runs a whole topology in memory, through the
// same machinery the processors run: feed it typed inserts, updates,
// deletes and snapshot reads, deliver some of them again, and read the
// metrics, events, search documents, read model documents and projection
// states the processors would have written (the last two typed, through the
// nodes' handles), without Kafka, Redis or Elasticsearch. [Table.Row] gives
// the row capture would send for a value, for a test that builds changes
// itself.
package topologies
