package app

import (
	"slices"
	"strconv"
	"testing"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/lovoo/goka/tester"
	"github.com/redis/go-redis/v9"
)

// TestDeploymentGroupsAreTheProcessorsGroups holds the consumer groups
// status, verify and reset work on to those the processors run as, for
// every node kind and read models with and without a join stage (and a
// transaction-consistent one, with its gate), with and without a group
// prefix.
func TestDeploymentGroupsAreTheProcessorsGroups(t *testing.T) {
	items := topologies.TableOf[orders.OrderItem]("shop", "public", "order_items")
	byID := func(i orders.OrderItem) string { return strconv.FormatInt(i.ID, 10) }
	lonely := topologies.New("lonely",
		topologies.ReadModel[orders.OrderItem]("item", topologies.Root(items, byID, func(d *orders.OrderItem, i orders.OrderItem) { *d = i })),
		topologies.ReadModel[orders.OrderSummary]("children-only",
			topologies.Root(topologies.TableOf[orders.Order]("shop", "public", "orders"), func(o orders.Order) string { return strconv.FormatInt(o.ID, 10) },
				func(s *orders.OrderSummary, o orders.Order) { s.OrderID = o.ID }),
			topologies.Children(items, func(i orders.OrderItem) string { return strconv.FormatInt(i.OrderID, 10) },
				func(s *orders.OrderSummary, rows []orders.OrderItem) { s.Items = len(rows) })))
	for _, topo := range []*topologies.Topology{
		orders.Metrics("shop", "public"), orders.Events("shop", "public", "events.Order"),
		orders.Summaries("shop", "public", "summaries"), orders.Projections("events.Order"),
		orders.Search("shop", "public", "orders"), lonely,
		topologies.New("consistent", orders.ConsistentSummaryNode("shop", "public")),
	} {
		for _, prefix := range []string{"", "blue"} {
			d := deploymentOf(prefix, topo)
			es, err := elasticsearch.NewClient(elasticsearch.Config{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := processors.NewProcessor(topo, processors.Config{Tester: tester.New(t), Group: d.group,
				Decoder: serde.NewDecoder(nil), Encoder: serde.NewEncoder(nil, "shop"),
				Redis: redis.NewClient(&redis.Options{}), Elasticsearch: es})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := d.groupNames(), p.Groups(); !slices.Equal(got, want) {
				t.Errorf("topology %s, prefix %q: groups %v, the processor's %v", topo.Name, prefix, got, want)
			}
		}
	}
}
