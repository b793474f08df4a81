package orders

import (
	"fmt"
	"net/http"

	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
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
	summaries, err := views.NewTable[*OrderSummary](brokers, goka.GroupTable(processors.ReadModelGroup(group, node)),
		append([]views.TableOption{views.WithCodec(summaryCodec{node})}, opts...)...)
	if err != nil {
		return nil, err
	}
	index, err := views.NewTable[*topologies.IndexState](brokers, goka.GroupTable(processors.ReadModelIndexGroup(group, node)),
		append([]views.TableOption{views.WithCodec(processors.ReadModelIndexCodec{})}, opts...)...)
	if err != nil {
		return nil, err
	}
	srv, err := views.NewServer(cfg, summaries, index)
	if err != nil {
		return nil, err
	}
	srv.Handle("GET /order-summaries/{id}", views.Query(func(r *http.Request) (*OrderSummary, error) {
		id, err := views.PathInt("id")(r)
		if err != nil {
			return nil, err
		}
		s, ok, err := summaries.Get(id)
		if err == nil && (!ok || s == nil) {
			err = fmt.Errorf("order %s: %w", id, views.ErrNotFound)
		}
		return s, err
	}))
	customers := TableOfCustomers(prefix, schema).Topic
	srv.Handle("GET /customers/{id}/orders", views.FanOut(index,
		func(r *http.Request) (string, error) {
			id, err := views.PathInt("id")(r)
			return node.ReferenceKey(customers, id), err
		},
		func(st *topologies.IndexState) []string { return st.Members },
		summaries))
	return srv, nil
}

// TableOfCustomers is the customers table under prefix and schema.
func TableOfCustomers(prefix, schema string) topologies.Table[Customer] {
	return topologies.TableOf[Customer](prefix, schema, "customers")
}

// summaryCodec decodes a read model table value into its order summary, nil
// when it has none (the order is deleted).
type summaryCodec struct{ node *topologies.ReadModelNode }

func (summaryCodec) Encode(any) ([]byte, error) {
	return nil, fmt.Errorf("order summaries are read-only here: the processor writes them")
}

func (c summaryCodec) Decode(b []byte) (any, error) {
	st, err := processors.ReadModelCodec{}.Decode(b)
	if err != nil {
		return nil, err
	}
	doc, ok, err := c.node.Document(st.(*topologies.ModelState))
	if err != nil || !ok {
		return (*OrderSummary)(nil), err
	}
	return doc.(*OrderSummary), nil
}
