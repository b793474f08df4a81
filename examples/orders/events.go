package orders

import (
	"math/big"
	"strconv"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
)

// The order lifecycle's domain events, derived from the orders table.
type (
	// OrderCreated: a new order (an insert, or an order a snapshot read).
	OrderCreated struct {
		OrderID    int64
		CustomerID int64
		Status     string
		Amount     *big.Rat
		CreatedAt  time.Time
	}
	// OrderPaid: the status became paid.
	OrderPaid struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	// OrderShipped: the status became shipped.
	OrderShipped struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	// OrderCancelled: the status became cancelled.
	OrderCancelled struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	// OrderAmountChanged: the amount changed, the status did not (a
	// status transition carries the new amount itself).
	OrderAmountChanged struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
	// OrderDeleted: the row was deleted; CustomerID and Amount are the
	// deleted row's.
	OrderDeleted struct {
		OrderID    int64
		CustomerID int64
		Amount     *big.Rat
	}
)

// EventsTopology is the name of the topology [Events] returns.
const EventsTopology = "order-events"

// Events declares the topology that derives the order events from the
// table schema.orders captured under topic prefix prefix, and emits them to
// output (conventionally "events.Order"; see [OrderEvents]), keyed by order
// id.
func Events(prefix, schema, output string) *topologies.Topology {
	return topologies.New(EventsTopology,
		topologies.Events(topologies.TableOf[Order](prefix, schema, "orders"), OrderEvents(output), deriveEvents))
}

// OrderEvents declares the event topic topic that the [Events] topology
// writes and the [Projections] topology reads: the order events.
func OrderEvents(topic string) topologies.EventTopic {
	return topologies.EventTopicOf(topic, OrderCreated{}, OrderPaid{}, OrderShipped{}, OrderCancelled{}, OrderAmountChanged{}, OrderDeleted{})
}

func deriveEvents(c topologies.Change[Order]) []topologies.Event {
	event := func(o *Order, data any) []topologies.Event {
		return []topologies.Event{{AggregateID: strconv.FormatInt(o.ID, 10), Data: data}}
	}
	switch c.Op {
	case change.OpCreate, change.OpRead:
		o := c.After
		return event(o, OrderCreated{OrderID: o.ID, CustomerID: o.CustomerID, Status: o.Status, Amount: o.Amount, CreatedAt: o.CreatedAt})
	case change.OpDelete:
		b := c.Before
		return event(b, OrderDeleted{OrderID: b.ID, CustomerID: b.CustomerID, Amount: b.Amount})
	case change.OpUpdate:
		o, b := c.After, c.Before
		if b == nil {
			return nil // no earlier version known
		}
		if b.Status != o.Status {
			switch o.Status {
			case "paid":
				return event(o, OrderPaid{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount})
			case "shipped":
				return event(o, OrderShipped{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount})
			case "cancelled":
				return event(o, OrderCancelled{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount})
			}
		}
		if !sameAmount(b.Amount, o.Amount) {
			return event(o, OrderAmountChanged{OrderID: o.ID, CustomerID: o.CustomerID, Amount: o.Amount})
		}
	}
	return nil
}

func sameAmount(a, b *big.Rat) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cmp(b) == 0
}
