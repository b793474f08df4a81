package engine_test

import (
	"testing"

	"github.com/cdcflow/cdcflow/topologies"
	"github.com/cdcflow/cdcflow/topologies/topotest"
)

// TestRejoiningADeletedReferenceForgetsIt: an order references customer 1,
// moves to customer 2; customer 1 is deleted (the order is not among its
// referrers then), and the order moves back to customer 1. Its summary has
// no customer: not the name customer 1 had before it was deleted.
func TestRejoiningADeletedReferenceForgetsIt(t *testing.T) {
	model := topologies.ReadModel[summary]("summary",
		topologies.Root(orders, func(o order) string { return id(o.ID) },
			func(s *summary, o order) { s.ID, s.Status = o.ID, o.Status }),
		topologies.Reference(customers, func(c customer) string { return id(c.ID) },
			func(o order) string { return id(o.Customer) },
			func(s *summary, c customer) { s.Customer = c.Name }))
	h := topotest.New(t, topologies.New("shop", model))
	of, cf := topotest.Table(h, orders), topotest.Table(h, customers)
	cf.Insert(customer{ID: 1, Name: "Ada"})
	cf.Insert(customer{ID: 2, Name: "Bob"})
	of.Insert(order{ID: 7, Customer: 1, Status: "new"})
	of.Update(order{ID: 7, Customer: 2, Status: "new"})
	cf.Delete(customer{ID: 1, Name: "Ada"})
	of.Update(order{ID: 7, Customer: 1, Status: "paid"})
	if got, _ := topotest.ReadModelDocument(h, model, "7"); got.Customer != "" {
		t.Fatalf("summary 7 = %+v: still the deleted customer's name", got)
	}
	h.Replay()
	if got, _ := topotest.ReadModelDocument(h, model, "7"); got.Customer != "" || got.Status != "paid" {
		t.Fatalf("after a replay, summary 7 = %+v", got)
	}
}
