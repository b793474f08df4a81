// Package topotest unit-tests topologies without Kafka, Redis or
// Elasticsearch: a [Harness] runs a [topologies.Topology] in memory, in
// `go test`, in microseconds per change.
//
// A test feeds typed changes to the tables the topology reads (insert,
// update, delete and snapshot read of its row structs, through [Table]),
// delivers some of them again ([Harness.Redeliver], [Harness.Replay]), and
// reads what the processors would have written: metric series and rankings
// ([Harness.Series], [Harness.Ranking]), domain events ([Harness.Events]),
// search documents ([Harness.Document]), changes set aside
// ([Harness.DeadLetters]), read model documents and states
// ([ReadModelDocuments], [ReadModelStateOf]) and projection states
// ([ProjectionStates]). Events another topology derives can be published to
// the topology's projections ([Harness.PublishEvents]).
//
// Read models and projections are read through their handles, typed: given
// the *topologies.ReadModelNode[V] a topology was built with,
// [ReadModelDocument] returns a V; given the *topologies.ProjectionNode[S],
// [ProjectionState] returns an S.
//
//	h := topotest.New(t, orders.Metrics("shop", "public"))
//	rows := topotest.Table(h, topologies.TableOf[orders.Order]("shop", "public", "orders"))
//	o := orders.Order{ID: 1, Status: "new", Amount: big.NewRat(10, 1)}
//	rows.Insert(o)
//	o.Status = "paid"
//	paid := rows.Update(o)
//	h.Redeliver(paid) // changes nothing
//	// h.Series(orders.OrdersPerStatus) is map[paid:1]
//
// # What the harness runs
//
// The topology's own functions, through the runtime form of its nodes
// ([topologies.Node]'s Engine), the machinery the processors run too: a
// change's rows are built from the typed values as capture sends them
// ([topologies.Table.Row]) and read back by the node, so a field that
// cannot be read shows in the test: an Events or Index node sets the change
// aside ([Harness.DeadLetters]), as the processor does; a Metrics node or a
// read model fails the test. Around them
// the harness keeps, in memory, the state the processors keep in their
// sinks, with the same rules:
//
//   - Metrics: per row, the position of the last applied change and what
//     that version of the row contributed; a change at or before it
//     changes nothing, a later one moves every series by the difference
//     between the row's new and stored contributions, and a bucket that
//     falls to zero is removed (the Redis script of redismetrics.Store).
//     Rankings read as ZREVRANGE reads them; TTLs are recorded, never
//     expire.
//   - Events: per row, the position of the last change turned into events
//     and the row as of it, as the processor's group table keeps them. A
//     later change is derived with that row as Before (under REPLICA
//     IDENTITY DEFAULT the change carries none), a change at or before it
//     derives nothing; each event gets its type from its data's Go type and
//     its deterministic id ([topologies.EventID]). A change whose row does
//     not fit the row type, or whose events cannot all be emitted (one of a
//     type the event topic does not declare, one without an aggregate id,
//     one that does not encode with the Avro schema the processor would
//     register: serde.CheckEvent), goes to the dead-letter topic with none
//     of its events ([Harness.DeadLetters]), and the node goes on; a kept
//     row that no longer decodes fails the test, as it stops the processor.
//   - Search indexes: one document per id, written and deleted with the
//     change's position as external version, so that a change at or before
//     the document's version (or its delete's) changes nothing; a change
//     whose document cannot be made goes to the dead-letter topic
//     ([Harness.DeadLetters]) and the node goes on.
//   - Read models: both stages, the join stage and the model stage, through
//     the read model's own stage functions, and their tables. A child row
//     is named by its key columns in name order ("line=2,order_id=7"), from
//     the record's key, as the processor names it. The messages between the
//     stages wait in one first-in-first-out queue, so that each key's
//     arrive in the order sent, as on a Kafka partition; each change is run
//     until the queue is empty. As the processor counts them, each message
//     of the model stage is a change, and a duplicate when the model stage
//     finds its row applied already; the join stage's messages (a
//     redelivered child or reference row, say) count nothing.
//   - Search indexes over read models: every new state of a document is
//     written, or deleted once the read model holds no document for it, with
//     the state's revision as external version ([Document.Version],
//     [ReadModelState.Revision]); a document the index's document function
//     cannot make goes to the dead-letter topic.
//   - Projections: every event on the projection's topic (emitted by the
//     topology's Events nodes, or published) is read back through its Avro
//     form into the struct of its type (serde.ReadBack), then keyed and
//     folded by the projection's handler of that type ([topologies.On]),
//     each aggregate's events once, as the processor's group table keeps
//     them. An event that cannot be read, or gets no key, goes to the dead
//     letters; one of a type the projection has no handler for is skipped.
//
// [Harness.Replay] delivers again what the processors' consumer groups,
// reset to the beginning, would read again: the change records, a read
// model's updates and table topics, and the event topics.
//
// Tests in package processors (TestHarness*) hold this mirror to the real
// thing: they feed one script of changes (snapshot reads, transitions,
// deletes, redeliveries, older changes, a replay) to the harness and, as
// Avro records, to the real processors running on goka's tester, with the
// real Redis and Elasticsearch sinks, and check that events, series,
// rankings, TTLs, documents, versions, dead letters and counters end the
// same. They cover Metrics, Events and Index nodes, and a read model of one
// root table (its states and counters); read models with children and
// references, their search indexes and projections are checked end to end
// in examples/orders.
//
// # What only the integration tests check
//
// Everything between the row and the sinks: capture's envelopes and their
// Avro encoding, Kafka delivery and ordering, goka's group tables and
// rebalances, the Redis script itself and key expiry, Elasticsearch's
// mappings (a field the mapping refuses), its version bounds
// (searchindex.Version) and its tombstone retention, retries and
// unreachable services, crashes between a sink write and a commit. The
// harness delivers each change at once, one at a time, in the order fed,
// and a read model's messages in one order of the many Kafka allows.
//
// # Node kinds
//
// The harness runs every node kind of package topologies: Metrics, Events,
// Index, ReadModel, IndexReadModel and Projection. It builds its runtime of
// each node through the interface the processors build theirs through, one
// method per node kind, so that a new kind does not compile until the
// harness runs it. [New] fails the test for a topology that does not
// validate.
package topotest
