package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// logSinks logs what the events, summaries and projections topologies
// write, read back from Kafka with read_committed: every order event, every
// new version of an order summary and of a customer's lifetime value. Each
// topic is read once it exists, until ctx ends.
func (r *runCmd) logSinks(ctx context.Context, svc *services, log *slog.Logger) error {
	summary := orders.SummaryNode(r.TopicPrefix, "public")
	summaries := goka.GroupTable(processors.ReadModelGroup(orders.SummaryTopology, summary))
	ltv := orders.Projections(r.EventsTopic).Nodes[0].(*topologies.ProjectionNode)
	ltvTable, _ := processors.ProjectionTable(orders.ProjectionsTopology, ltv)
	decoder := serde.NewDecoder(svc.registry)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return tail(gctx, svc.brokers, r.EventsTopic, log, func(rec *kgo.Record) {
			ev, _, err := decoder.DecodeEventRecord(gctx, rec.Value)
			if err != nil {
				log.Warn("unreadable order event", "err", err)
				return
			}
			log.Info("order event", "type", ev.Type, "order", ev.AggregateID, "position", ev.Position.String())
		})
	})
	g.Go(func() error {
		return tail(gctx, svc.brokers, string(summaries), log, func(rec *kgo.Record) {
			if rec.Value == nil {
				return
			}
			st, err := processors.ReadModelCodec{}.Decode(rec.Value)
			if err != nil {
				log.Warn("unreadable order summary", "order", string(rec.Key), "err", err)
				return
			}
			doc, ok, err := summary.Document(st.(*topologies.ModelState))
			switch {
			case err != nil:
				log.Warn("unreadable order summary", "order", string(rec.Key), "err", err)
			case !ok:
				log.Info("no order summary: no order row (deleted, or not read yet)", "order", string(rec.Key))
			default:
				s := doc.(*orders.OrderSummary)
				log.Info("order summary", "order", s.OrderID, "customer", s.CustomerName, "status", s.Status,
					"amount", s.Amount, "items", s.Items, "items_total", s.ItemsTotal)
			}
		})
	})
	g.Go(func() error {
		return tail(gctx, svc.brokers, string(ltvTable), log, func(rec *kgo.Record) {
			st, err := ltv.State(rec.Value)
			if err != nil {
				log.Warn("unreadable customer lifetime value", "customer", string(rec.Key), "err", err)
				return
			}
			c, _ := st.(orders.CustomerLTV)
			log.Info("customer lifetime value", "customer", string(rec.Key), "lifetime_value_cents", c.LifetimeValueCents,
				"orders_per_status", c.OrdersPerStatus)
		})
	})
	return g.Wait()
}

// tail hands every committed record of topic, from its start, to handle,
// once the topic exists and until ctx ends.
func tail(ctx context.Context, brokers []string, topic string, log *slog.Logger, handle func(*kgo.Record)) error {
	if err := waitForTopics(ctx, brokers, topic); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fetches.EachError(func(topic string, _ int32, err error) {
			log.Warn("reading back what the topologies wrote", "topic", topic, "err", err)
		})
		fetches.EachRecord(handle)
	}
}
