package topologies_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/topologies"
)

// TestEventType: an event's type is the name of its data's Go type.
func TestEventType(t *testing.T) {
	type OrderShipped struct{ OrderID int64 }
	for _, tc := range []struct {
		name string
		data any
		want string
	}{
		{"a struct", OrderPaid{OrderID: 1}, "OrderPaid"},
		{"a struct declared in a function", OrderShipped{OrderID: 1}, "OrderShipped"},
		{"another package's struct", change.Position{}, "Position"},
		{"no data", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (topologies.Event{AggregateID: "1", Data: tc.data}).Type(); got != tc.want {
				t.Fatalf("Type() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEventTopicOf(t *testing.T) {
	type OrderShipped struct{ OrderID int64 }
	et := topologies.EventTopicOf("events.Order", OrderShipped{}, OrderPaid{})
	if et.Topic != "events.Order" || !reflect.DeepEqual(et.Types(), []string{"OrderPaid", "OrderShipped"}) {
		t.Fatalf("topic %s, types %v", et.Topic, et.Types())
	}
	// The Events node emitting to it accepts its types, and no other.
	node := topologies.Events(topologies.TableOf[Order]("shop", "public", "orders"), et, orderEvents).Engine().(*engine.Events)
	if node.Output != "events.Order" || !reflect.DeepEqual(node.Types, map[string]bool{"OrderPaid": true, "OrderShipped": true}) {
		t.Fatalf("node output %s, types %v", node.Output, node.Types)
	}
}

func TestEventsValidation(t *testing.T) {
	orders := topologies.TableOf[Order]("shop", "public", "orders")
	for _, tc := range []struct {
		name    string
		node    *topologies.EventsNode
		wantErr string // "" for valid
	}{
		{"valid", topologies.Events(orders, orderTopic, orderEvents), ""},
		{"nil derive", topologies.Events[Order](orders, orderTopic, nil), "events from shop.public.orders: derive function is nil"},
		{"bad topic", topologies.Events(orders, topologies.EventTopicOf("events/Order", OrderPaid{}), orderEvents),
			`events from shop.public.orders: event topic "events/Order" must be dot-separated names`},
		{"no event types", topologies.Events(orders, topologies.EventTopicOf("events.Order"), orderEvents),
			"events from shop.public.orders: no event types: pass one value of each event data struct"},
		{"an event type not a struct", topologies.Events(orders, topologies.EventTopicOf("events.Order", "OrderPaid"), orderEvents),
			"event data string is not a struct"},
		{"non-struct rows", topologies.Events(topologies.TableOf[int]("shop", "public", "orders"), orderTopic,
			func(topologies.Change[int]) []topologies.Event { return nil }), "row type int is not a struct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := topologies.New("events", tc.node).Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
