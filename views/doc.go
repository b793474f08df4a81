// Package views is the query side of cdcflow: read models kept in goka group
// tables, served through goka views as an HTTP JSON API.
//
// A processor keeps a read model in its group table, the compacted topic
// "<group>-table" (goka.GroupTable), one value per key: an order summary
// keyed by order id, a customer index keyed by customer id that lists the
// customer's order ids. A [Table] is a typed, read-only view of such a
// topic: a local copy of every partition (in memory, or on disk with
// [WithStateDir]) that first recovers (reads the topic up to where it ended
// when the table started) and then keeps following it, so a write shows in
// [Table.Get] as soon as the table consumed it. Values are JSON documents
// decoded into V by default ([JSON], which a processor can use as its group
// table codec too); [WithCodec] takes any goka codec. Tables read with
// read_committed, as processors.SaramaConfig does, and never create the topic
// they read: the processor owns it.
//
// A [Server] runs tables and serves the routes declared with [Server.Handle],
// net/http ServeMux patterns such as "GET /order-summaries/{id}". The
// handlers are small and typed:
//
//   - [Lookup] answers the value a table holds under the key the request
//     names ([PathInt] or [PathString] read it from the path);
//   - [FanOut] looks the key up in an index table and answers the values
//     another table holds under the keys the entry lists;
//   - [Query] answers whatever a function returns, for anything else.
//
// Every answer is JSON. A key that is not a valid key is 400 Bad Request, a
// missing one 404 Not Found, and until every table has recovered every
// route answers 503 Service Unavailable, so that no answer mixes a caught-up
// table with a partial one; errors come as {"error": message}. GET /readyz
// answers 200 only once every table has recovered, GET /healthz 200 while the
// server serves, and GET /metrics the Prometheus registry of
// [ServerConfig.Metrics]. When its context ends, the server stops accepting
// requests, answers those in flight, then stops its tables.
//
// Tables and server connect to nothing until they run. Starting, a table
// fails at once with an error that names the fix when Kafka is unreachable or
// its topic does not exist (the processor creates it when it first starts);
// once running it reconnects by itself. Tests run tables on goka's in-memory
// tester with [WithTester].
package views
