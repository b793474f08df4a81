package orders

import (
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/topologies"
)

// SearchTopology is the name of the topology [Search] returns.
const SearchTopology = "order-search"

// OrderDocument is an order as the search index holds it.
type OrderDocument struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	Status     string    `json:"status"`
	Amount     string    `json:"amount"` // exact decimal text, e.g. "10.50"
	CreatedAt  time.Time `json:"created_at"`
}

// SearchMapping is the mapping of the orders search index.
const SearchMapping = `{"properties": {
	"id":          {"type": "long"},
	"customer_id": {"type": "long"},
	"status":      {"type": "keyword"},
	"amount":      {"type": "keyword"},
	"created_at":  {"type": "date"}
}}`

// Search declares the order search topology over the table schema.orders
// captured under topic prefix prefix: one document per order in the
// Elasticsearch index index, with the order's id as document id.
func Search(prefix, schema, index string) *topologies.Topology {
	return topologies.New(SearchTopology,
		topologies.Index(topologies.TableOf[Order](prefix, schema, "orders"), index, Document,
			topologies.WithMapping(SearchMapping)))
}

// Document returns an order's search document and its id.
func Document(o Order) (string, any) {
	doc := OrderDocument{ID: o.ID, CustomerID: o.CustomerID, Status: o.Status, CreatedAt: o.CreatedAt.UTC()}
	if o.Amount != nil {
		doc.Amount = o.Amount.FloatString(2)
	}
	return strconv.FormatInt(o.ID, 10), doc
}
