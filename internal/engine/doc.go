// Package engine is the runtime form of a topology's nodes: what package
// topologies builds from the typed functions a user declares, and what the
// processors (on goka) and the topotest harness (in memory) run. Its node
// kinds hold the user's functions behind untyped closures, and the state
// machines the runtimes share are pure functions here (a read model's join
// and model stages, a projection's fold, the row state of an events node),
// so that a processor and the harness apply a change the same way.
//
// The node kinds are a closed set. Every [Node] hands itself to the method
// of its kind of a [Runtime] ([Node.Run]); each runtime implements them all,
// so a new kind is a compile error in every runtime until it is handled,
// instead of a type switch that forgets it.
//
// Names of what the processors keep (consumer groups, tables, internal
// topics) are here too ([ReadModelGroup], [JoinGroup], [UpdatesTopic],
// [ProjectionGroup], [TableTopic]), since the processors that write them and
// the views that read them must agree on them.
package engine
