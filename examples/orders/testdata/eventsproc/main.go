// Command eventsproc is a processor binary of the order events topology
// alone, with events going to "events.<topic prefix>.Order": the kill -9
// test of the events (events_kill_e2e_test.go) builds, runs and kills it.
package main

import (
	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/topologies"
)

func main() {
	app.Main(func(src app.Source) *topologies.Topology {
		return orders.Events(src.Prefix, src.Schema, "events."+src.Prefix+".Order")
	})
}
