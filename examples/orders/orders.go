// Package orders is the e-commerce orders example: an orders table captured
// from PostgreSQL, a topology that keeps order count and revenue per day,
// and per 1-minute and 1-hour window of commit time, in Redis for a
// realtime dashboard, and one that keeps an Elasticsearch index of the
// orders.
package orders

import (
	"math/big"
	"strconv"
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

// The series the metrics topology keeps.
const (
	// OrdersPerDay and RevenuePerDay are bucketed by the UTC day an order
	// was created (2006-01-02).
	OrdersPerDay  = "orders_per_day"
	RevenuePerDay = "revenue_cents_per_day"
	// OrdersPerStatus counts orders by status; an order moves bucket when its
	// status changes.
	OrdersPerStatus = "orders_per_status"
	// TopCustomers ranks customers (by id) by the revenue of their orders,
	// in cents.
	TopCustomers = "top_customers_by_revenue_cents"
	// RevenuePerMinute is one series per UTC hour of creation
	// (revenue_cents_per_minute:2006-01-02T15), bucketed by minute ("04"),
	// each kept for MinuteSeriesTTL after its last change: a dashboard reads
	// the last hours' series.
	RevenuePerMinute = "revenue_cents_per_minute"
)

// The windowed series of the metrics topology, by the commit time of each
// order's insert in PostgreSQL (not created_at, which the application
// sets): orders and revenue in cents per 1-minute tumbling window, and per
// 1-hour window hopping by 5 minutes. An order's amount changed later
// changes its windows' revenue; a deleted order leaves them.
const (
	OrdersPerMinuteWindow  = "orders_1m"
	RevenuePerMinuteWindow = "revenue_cents_1m"
	OrdersPerHourWindow    = "orders_1h_every_5m"
	RevenuePerHourWindow   = "revenue_cents_1h_every_5m"
)

// The windows of the windowed series: each takes changes for a minute
// after its end (WindowGrace), then is final; Redis keeps it for a day.
var (
	MinuteWindows = topologies.Tumbling(time.Minute).Grace(WindowGrace)
	HourWindows   = topologies.Hopping(time.Hour, 5*time.Minute).Grace(WindowGrace)
)

// WindowGrace is how long after its end a window of the windowed series
// takes changes.
const WindowGrace = time.Minute

// MinuteSeriesTTL is how long a per-minute series lives after its last
// change.
const MinuteSeriesTTL = 6 * time.Hour

// MetricsTopology is the name of the topology [Metrics] returns.
const MetricsTopology = "order-metrics"

// Metrics declares the order metrics topology over the table schema.orders
// captured under topic prefix prefix: each order counts once, and its amount
// in cents, towards the day and the minute it was created, its status, and
// its customer's rank; and towards the 1-minute and 1-hour windows its
// insert was committed in.
func Metrics(prefix, schema string) *topologies.Topology {
	table := topologies.TableOf[Order](prefix, schema, "orders")
	return topologies.New(MetricsTopology,
		topologies.Metrics(table, measure),
		topologies.Windowed(table, MinuteWindows, perWindow(OrdersPerMinuteWindow, RevenuePerMinuteWindow)),
		topologies.Windowed(table, HourWindows, perWindow(OrdersPerHourWindow, RevenuePerHourWindow)))
}

// perWindow counts an order once towards the series orders and its amount
// in cents towards revenue.
func perWindow(orders, revenue string) func(Order) []topologies.WindowSample {
	return func(o Order) []topologies.WindowSample {
		return []topologies.WindowSample{{Series: orders, Value: 1}, {Series: revenue, Value: Cents(o.Amount)}}
	}
}

func measure(o Order) []topologies.Sample {
	created := o.CreatedAt.UTC()
	day, cents := created.Format(time.DateOnly), Cents(o.Amount)
	return []topologies.Sample{
		{Series: OrdersPerDay, Bucket: day, Value: 1},
		{Series: RevenuePerDay, Bucket: day, Value: cents},
		{Series: OrdersPerStatus, Bucket: o.Status, Value: 1},
		{Series: TopCustomers, Bucket: strconv.FormatInt(o.CustomerID, 10), Value: cents, Ranked: true},
		{Series: MinuteSeries(created), Bucket: created.Format("04"), Value: cents, TTL: MinuteSeriesTTL},
	}
}

// MinuteSeries names the per-minute revenue series of t's hour.
func MinuteSeries(t time.Time) string {
	return RevenuePerMinute + ":" + t.UTC().Format("2006-01-02T15")
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
