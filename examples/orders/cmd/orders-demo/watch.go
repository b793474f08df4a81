package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// logSinks logs what the events, summaries and projections topologies
// write, read back from Kafka with read_committed: every order event, every
// new version of an order summary and of a customer's lifetime value. Each
// topic is read once it exists, until ctx ends.
func (c *runCmd) logSinks(ctx context.Context, p *app.Published, log *slog.Logger) error {
	summary := orders.SummaryNode(c.TopicPrefix, "public")
	summaries := processors.ReadModelTable(orders.SummaryTopology, summary)
	ltv := orders.CustomerLTVNode(c.EventsTopic)
	ltvTable := processors.ProjectionTable(orders.ProjectionsTopology, ltv)
	reg, err := p.RegistryClient()
	if err != nil {
		return err
	}
	decoder := serde.NewDecoder(reg)
	// The projection dead-letters what cannot be read; here it is only
	// mentioned, now and then.
	unreadable := rate.Sometimes{First: 3, Interval: 30 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return tail(gctx, p.Kafka, c.EventsTopic, log, func(rec *kgo.Record) {
			ev, _, err := decoder.DecodeEventRecord(gctx, rec.Value)
			if err != nil {
				unreadable.Do(func() { log.Warn("unreadable order event (mentioned now and then)", "err", err) })
				return
			}
			log.Info("order event", "type", ev.Type, "order", ev.AggregateID, "position", ev.Position.String())
		})
	})
	g.Go(func() error {
		return tail(gctx, p.Kafka, string(summaries), log, func(rec *kgo.Record) {
			if rec.Value == nil {
				return
			}
			var st struct{ Document json.RawMessage }
			err := json.Unmarshal(rec.Value, &st)
			var s orders.OrderSummary
			if err == nil && st.Document != nil {
				s, err = summary.Document(st.Document)
			}
			switch {
			case err != nil:
				log.Warn("unreadable order summary", "order", string(rec.Key), "err", err)
			case st.Document == nil:
				log.Info("no order summary: no order row (deleted, or not read yet)", "order", string(rec.Key))
			default:
				log.Info("order summary", "order", s.OrderID, "customer", s.CustomerName, "status", s.Status,
					"amount", s.Amount, "items", s.Items, "items_total", s.ItemsTotal)
			}
		})
	})
	g.Go(func() error {
		return tail(gctx, p.Kafka, string(ltvTable), log, func(rec *kgo.Record) {
			c, err := ltv.State(rec.Value)
			if err != nil {
				log.Warn("unreadable customer lifetime value", "customer", string(rec.Key), "err", err)
				return
			}
			log.Info("customer lifetime value", "customer", string(rec.Key), "lifetime_value_cents", c.LifetimeValueCents,
				"orders_per_status", c.OrdersPerStatus)
		})
	})
	return g.Wait()
}

// tail hands every committed record of topic, from its start, to handle,
// once the topic exists and until ctx ends.
func tail(ctx context.Context, kafka kafkaconn.Config, topic string, log *slog.Logger, handle func(*kgo.Record)) error {
	opts, err := kafka.KgoOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
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
