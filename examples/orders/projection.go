package orders

import (
	"maps"
	"math/big"
	"strconv"

	"github.com/cdcflow/cdcflow/topologies"
)

// CustomerLTV is what the customer-ltv projection keeps per customer, folded
// from the order events alone.
type CustomerLTV struct {
	// LifetimeValueCents is the sum of the current amounts, in whole cents,
	// of the customer's orders that are paid and not cancelled: those whose
	// status is paid or shipped (an order ships once it is paid). New,
	// cancelled and deleted orders count nothing, and an amount changed
	// after payment counts as changed.
	LifetimeValueCents int64 `json:"lifetime_value_cents"`
	// OrdersPerStatus counts the customer's orders (deleted ones left out)
	// by current status; a status no order has is left out.
	OrdersPerStatus map[string]int64 `json:"orders_per_status"`
	// Orders is each order's status and amount, by order id: what moves an
	// order from one status to another, whatever order the events of
	// different orders come in.
	Orders map[string]CustomerOrder `json:"orders"`
}

// CustomerOrder is an order as the customer-ltv projection knows it.
type CustomerOrder struct {
	Status      string `json:"status"`
	AmountCents int64  `json:"amount_cents"`
}

// ProjectionsTopology is the name of the topology [Projections] returns,
// and CustomerLTVProjection the name of its projection: run under the group
// g (processors.Config.Group, default ProjectionsTopology), the projection's
// consumer group is g-customer-ltv and its table the topic
// g-customer-ltv-table, keyed by customer id.
const (
	ProjectionsTopology   = "order-projections"
	CustomerLTVProjection = "customer-ltv"
)

// Projections declares the topology of the customer-ltv projection over the
// order events on topic (conventionally "events.Order"): a [CustomerLTV] per
// customer id.
//
// It sees what the events say: an order whose customer_id is updated stays
// with its first customer, and a status other than new, paid, shipped and
// cancelled is not an event (see [Events]).
func Projections(topic string) *topologies.Topology {
	return topologies.New(ProjectionsTopology,
		CustomerLTVNode(topic))
}

// CustomerLTVNode declares the customer-ltv projection over the order events
// on topic: a [CustomerLTV] per customer id.
func CustomerLTVNode(topic string) *topologies.ProjectionNode[CustomerLTV] {
	return topologies.Projection(CustomerLTVProjection, OrderEvents(topic), customerLTVHandlers...)
}

// orderFact is what an order event tells about its order.
type orderFact struct {
	customer int64
	status   string   // "" when the event leaves it unchanged
	amount   *big.Rat // nil when the event leaves it unchanged
	deleted  bool
}

// on declares the projection's handler of the events of type E, given what
// one tells about its order: each is keyed by its order's customer.
func on[E any](fact func(E) orderFact) topologies.Handler[CustomerLTV] {
	return topologies.On(
		func(e E) string { return strconv.FormatInt(fact(e).customer, 10) },
		func(s CustomerLTV, e topologies.Recorded[E]) CustomerLTV {
			return foldCustomerLTV(s, e.AggregateID, fact(e.Data))
		})
}

// onDelete is on for the event that deletes its order: the projection keeps
// a marker of the order, dropped after the processor's marker retention.
func onDelete[E any](fact func(E) orderFact) topologies.Handler[CustomerLTV] {
	return topologies.OnDelete(
		func(e E) string { return strconv.FormatInt(fact(e).customer, 10) },
		func(s CustomerLTV, e topologies.Recorded[E]) CustomerLTV {
			return foldCustomerLTV(s, e.AggregateID, fact(e.Data))
		})
}

var customerLTVHandlers = []topologies.Handler[CustomerLTV]{
	on(func(d OrderCreated) orderFact {
		return orderFact{customer: d.CustomerID, status: d.Status, amount: d.Amount}
	}),
	on(func(d OrderPaid) orderFact {
		return orderFact{customer: d.CustomerID, status: "paid", amount: d.Amount}
	}),
	on(func(d OrderShipped) orderFact {
		return orderFact{customer: d.CustomerID, status: "shipped", amount: d.Amount}
	}),
	on(func(d OrderCancelled) orderFact {
		return orderFact{customer: d.CustomerID, status: "cancelled", amount: d.Amount}
	}),
	on(func(d OrderAmountChanged) orderFact { return orderFact{customer: d.CustomerID, amount: d.Amount} }),
	onDelete(func(d OrderDeleted) orderFact { return orderFact{customer: d.CustomerID, deleted: true} }),
}

// foldCustomerLTV folds what an event of order tells (f) into s.
func foldCustomerLTV(s CustomerLTV, order string, f orderFact) CustomerLTV {
	orders := maps.Clone(s.Orders)
	if orders == nil {
		orders = map[string]CustomerOrder{}
	}
	if f.deleted {
		delete(orders, order)
	} else {
		o := orders[order]
		if f.status != "" {
			o.Status = f.status
		}
		if f.amount != nil {
			o.AmountCents = Cents(f.amount)
		}
		orders[order] = o
	}
	// Everything else follows from the orders, so that the state does not
	// depend on how the events of different orders interleave.
	next := CustomerLTV{OrdersPerStatus: map[string]int64{}, Orders: orders}
	for _, o := range orders {
		next.OrdersPerStatus[o.Status]++
		if o.Status == "paid" || o.Status == "shipped" {
			next.LifetimeValueCents += o.AmountCents
		}
	}
	return next
}
