package orders

import (
	"math/big"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/topologies"
)

// CreateCustomersTable and CreateOrderItemsTable return the statements that
// create the tables the order summary joins the orders with, in schema. They
// have no foreign keys: a read model must cope with rows arriving in any
// order anyway (a line item before its order, an order before its customer).
func CreateCustomersTable(schema string) string {
	return `CREATE TABLE IF NOT EXISTS ` + schema + `.customers (
	id      bigserial PRIMARY KEY,
	name    text NOT NULL,
	segment text NOT NULL
)`
}

// CreateOrderItemsTable: see [CreateCustomersTable].
func CreateOrderItemsTable(schema string) string {
	return `CREATE TABLE IF NOT EXISTS ` + schema + `.order_items (
	id         bigserial PRIMARY KEY,
	order_id   bigint         NOT NULL,
	product    text           NOT NULL,
	quantity   integer        NOT NULL,
	unit_price numeric(12, 2) NOT NULL
)`
}

// Customer is a row of the customers table.
type Customer struct {
	ID      int64
	Name    string
	Segment string
}

// OrderItem is a row of the order_items table.
type OrderItem struct {
	ID        int64
	OrderID   int64
	Product   string
	Quantity  int32
	UnitPrice *big.Rat
}

// OrderSummary is the read model of an order: the order, joined with its
// customer and the total of its line items.
type OrderSummary struct {
	OrderID         int64     `json:"order_id"`
	CustomerID      int64     `json:"customer_id"`
	CustomerName    string    `json:"customer_name"`    // "" until the customer row is known
	CustomerSegment string    `json:"customer_segment"` // likewise
	Status          string    `json:"status"`
	Amount          string    `json:"amount"` // exact decimal text, e.g. "10.50"
	CreatedAt       time.Time `json:"created_at"`
	Items           int       `json:"items"`       // line items
	ItemsTotal      string    `json:"items_total"` // sum of quantity × unit price
}

// SummaryTopology is the name of the topology [Summaries] returns, and
// SummaryModel the name of its read model: the summaries are kept in the
// goka table of group order-summaries-summary.
const (
	SummaryTopology = "order-summaries"
	SummaryModel    = "summary"
)

// SummaryMapping is the mapping of the order summaries search index: the
// customer's name is full-text searchable, and sortable by its keyword.
const SummaryMapping = `{"properties": {
	"order_id":         {"type": "long"},
	"customer_id":      {"type": "long"},
	"customer_name":    {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
	"customer_segment": {"type": "keyword"},
	"status":           {"type": "keyword"},
	"amount":           {"type": "keyword"},
	"created_at":       {"type": "date"},
	"items":            {"type": "integer"},
	"items_total":      {"type": "keyword"}
}}`

// Summaries declares the order summary read model over the tables orders,
// customers and order_items of schema, captured under topic prefix prefix
// (one summary per order, keyed by the order id in decimal), and the
// Elasticsearch index index of the summaries: the orders with their
// customer's name and their status, searchable. An empty index keeps the
// read model alone.
func Summaries(prefix, schema, index string) *topologies.Topology {
	return SummariesInto(prefix, schema, index, "")
}

// SummariesInto is [Summaries] that also writes the summaries to the
// PostgreSQL table table ("table" or "schema.table"; empty: none), a row
// per order keyed by order_id, upserted whenever the summary changes and
// deleted with its order.
func SummariesInto(prefix, schema, index, table string) *topologies.Topology {
	node := SummaryNode(prefix, schema)
	nodes := []topologies.Node{node}
	if index != "" {
		nodes = append(nodes, topologies.IndexReadModel(node, index, nil, topologies.WithMapping(SummaryMapping)))
	}
	if table != "" {
		nodes = append(nodes, topologies.PostgresReadModel(node, table, topologies.PrimaryKey("order_id")))
	}
	return topologies.New(SummaryTopology, nodes...)
}

// SummaryNode is the read model [Summaries] runs, for reading it back.
func SummaryNode(prefix, schema string) *topologies.ReadModelNode[OrderSummary] {
	return topologies.ReadModel[OrderSummary](SummaryModel, summaryParts(prefix, schema)...)
}

// ConsistentSummaryNode is [SummaryNode], transaction-consistent: read with
// views.ConsistentReadModel, a summary never shows an order without the
// line items committed with it, nor the reverse.
func ConsistentSummaryNode(prefix, schema string) *topologies.ReadModelNode[OrderSummary] {
	parts := append(summaryParts(prefix, schema), topologies.Consistent[OrderSummary]())
	return topologies.ReadModel[OrderSummary](SummaryModel, parts...)
}

func summaryParts(prefix, schema string) []topologies.ReadModelPart[OrderSummary] {
	return []topologies.ReadModelPart[OrderSummary]{
		topologies.Root(topologies.TableOf[Order](prefix, schema, "orders"), orderKey, applyOrder),
		topologies.Children(topologies.TableOf[OrderItem](prefix, schema, "order_items"), itemOrder, applyItems),
		topologies.Reference(TableOfCustomers(prefix, schema), customerID, orderCustomer, applyCustomer),
	}
}

func orderKey(o Order) string      { return strconv.FormatInt(o.ID, 10) }
func itemOrder(i OrderItem) string { return strconv.FormatInt(i.OrderID, 10) }
func customerID(c Customer) string { return strconv.FormatInt(c.ID, 10) }
func orderCustomer(o Order) string { return strconv.FormatInt(o.CustomerID, 10) }
func applyCustomer(s *OrderSummary, c Customer) {
	s.CustomerName, s.CustomerSegment = c.Name, c.Segment
}

func applyOrder(s *OrderSummary, o Order) {
	s.OrderID, s.CustomerID, s.Status, s.CreatedAt = o.ID, o.CustomerID, o.Status, o.CreatedAt.UTC()
	s.Amount = decimal(o.Amount)
}

func applyItems(s *OrderSummary, items []OrderItem) {
	total := new(big.Rat)
	for _, it := range items {
		if it.UnitPrice != nil {
			total.Add(total, new(big.Rat).Mul(it.UnitPrice, big.NewRat(int64(it.Quantity), 1)))
		}
	}
	s.Items, s.ItemsTotal = len(items), total.FloatString(2)
}

func decimal(r *big.Rat) string {
	if r == nil {
		return ""
	}
	return r.FloatString(2)
}
