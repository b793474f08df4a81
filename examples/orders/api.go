package orders

import (
	"slices"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
)

// SummaryAPI serves the order summaries [Summaries] keeps, run as group
// group over the tables of schema captured under topic prefix prefix:
//
//	GET /order-summaries/{id}         an order's summary (404 once deleted)
//	GET /customers/{id}/orders        the summaries of the customer's orders
//
// plus /readyz, which is 200 once the views caught up with the tables.
func SummaryAPI(brokers []string, group, prefix, schema string, cfg views.ServerConfig, opts ...views.TableOption) (*views.Server, error) {
	node := SummaryNode(prefix, schema)
	summaries, err := views.ReadModel(brokers, group, node, opts...)
	if err != nil {
		return nil, err
	}
	byCustomer, err := views.Referrers(brokers, group, node, TableOfCustomers(prefix, schema), opts...)
	if err != nil {
		return nil, err
	}
	srv, err := views.NewServer(cfg, summaries, byCustomer)
	if err != nil {
		return nil, err
	}
	srv.Handle("GET /order-summaries/{id}", views.Lookup(summaries, views.PathInt("id")))
	srv.Handle("GET /customers/{id}/orders", views.FanOut(byCustomer, views.PathInt("id"), slices.Clone, summaries))
	return srv, nil
}

// TableOfCustomers is the customers table under prefix and schema.
func TableOfCustomers(prefix, schema string) topologies.Table[Customer] {
	return topologies.TableOf[Customer](prefix, schema, "customers")
}
