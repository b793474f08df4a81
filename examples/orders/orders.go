// Package orders is the e-commerce orders example: an orders table captured
// from PostgreSQL, a topology that keeps order count and revenue per day in
// Redis for a realtime dashboard, and one that keeps an Elasticsearch index
// of the orders.
package orders

import (
	"math/big"
	"time"

	"github.com/cdcflow/cdcflow/topologies"
)

// CreateTable returns the statement that creates the example's table in
// schema (usually public).
func CreateTable(schema string) string {
	return `CREATE TABLE IF NOT EXISTS ` + schema + `.orders (
	id          bigserial PRIMARY KEY,
	customer_id integer        NOT NULL,
	status      text           NOT NULL DEFAULT 'new',
	amount      numeric(12, 2) NOT NULL,
	created_at  timestamptz    NOT NULL DEFAULT now()
)`
}

// Order is a row of the orders table.
type Order struct {
	ID         int64
	CustomerID int64
	Status     string
	Amount     *big.Rat
	CreatedAt  time.Time
}

// The series the metrics topology keeps, bucketed by UTC day (2006-01-02).
const (
	OrdersPerDay  = "orders_per_day"
	RevenuePerDay = "revenue_cents_per_day"
)

// MetricsTopology is the name of the topology [Metrics] returns.
const MetricsTopology = "order-metrics"

// Metrics declares the order metrics topology over the table schema.orders
// captured under topic prefix prefix: each order counts once, and its amount
// in cents, towards the day it was created.
func Metrics(prefix, schema string) *topologies.Topology {
	return topologies.New(MetricsTopology,
		topologies.Metrics(topologies.TableOf[Order](prefix, schema, "orders"), measure))
}

func measure(o Order) []topologies.Sample {
	day := o.CreatedAt.UTC().Format(time.DateOnly)
	return []topologies.Sample{
		{Series: OrdersPerDay, Bucket: day, Value: 1},
		{Series: RevenuePerDay, Bucket: day, Value: Cents(o.Amount)},
	}
}

// Cents converts an amount to whole cents, rounding half away from zero.
func Cents(amount *big.Rat) int64 {
	if amount == nil {
		return 0
	}
	c := new(big.Rat).Mul(amount, big.NewRat(100, 1))
	q, r := new(big.Int).QuoRem(c.Num(), c.Denom(), new(big.Int))
	if new(big.Int).Mul(r, big.NewInt(2)).CmpAbs(c.Denom()) >= 0 {
		q.Add(q, big.NewInt(int64(c.Num().Sign())))
	}
	return q.Int64()
}
