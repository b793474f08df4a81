package processors

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Ready reports whether the processor has caught up since Run started:
// every goka group has recovered its table, and has consumed (committed)
// every input partition up to the end that partition had when the group
// started, within one offset (the last offset of a partition a transaction
// wrote is its commit marker, which a consumer never marks); and the event
// relay, when there is one, has published the events of the row states its
// table held then (Lag counts its group too). It stays true
// until Run returns. It is safe to call concurrently with Run.
func (p *Processor) Ready() bool { return p.ready.Load() }

// Lag returns, by consumer group of the processor, how many records of its
// inputs the group has not committed yet, as last measured (every few
// seconds while Run runs, once the groups have started); nil before the
// first measure. Transaction markers count as records. It is safe to call
// concurrently with Run.
func (p *Processor) Lag() map[string]int64 {
	p.lagMu.Lock()
	defer p.lagMu.Unlock()
	return maps.Clone(p.lag)
}

// offsets are, by group, topic and partition, what a group must reach or
// has reached.
type offsets map[string]map[string]map[int32]int64

// watch marks the processor ready once it has caught up (checking every
// second), then measures its lag every five seconds, until ctx ends.
func (p *Processor) watch(ctx context.Context, procs []*goka.Processor) {
	for _, proc := range procs {
		if err := proc.WaitForReadyContext(ctx); err != nil {
			return
		}
	}
	if p.cfg.Tester != nil {
		p.markReady()
		return
	}
	sc, err := p.cfg.saramaConfig()
	if err != nil {
		return
	}
	client, err := sarama.NewClient(p.cfg.Brokers, sc)
	if err != nil {
		p.cfg.Logger.Warn("readiness: connect to Kafka", "topology", p.topo.Name, "err", err)
		return
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return
	}
	start, err := p.ends(client) // what each group must reach: its inputs' ends as of now
	if err != nil {
		p.cfg.Logger.Warn("readiness: end offsets", "topology", p.topo.Name, "err", err)
		return
	}
	interval := time.Second
	for {
		var behind string
		committed, err := p.committed(admin, start)
		if err == nil && !p.Ready() {
			if behind = behindOf(start, committed); behind == "" {
				p.markReady()
				interval = 5 * time.Second
			}
		}
		if ends, err2 := p.ends(client); err == nil && err2 == nil {
			p.measureLag(ends, committed)
		}
		switch {
		case err != nil:
			p.cfg.Logger.Debug("readiness: committed offsets", "topology", p.topo.Name, "err", err)
		case behind != "":
			p.cfg.Logger.Debug("processor catching up", "topology", p.topo.Name, "behind", behind)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return
		}
	}
}

func (p *Processor) markReady() {
	p.ready.Store(true)
	p.counters.promReady.Set(1)
	p.cfg.Logger.Info("processor caught up", "topology", p.topo.Name)
}

// ends returns the end offsets of every input partition of every group,
// the event relay's (its table topic) included.
func (p *Processor) ends(client sarama.Client) (offsets, error) {
	inputs := map[string][]string{}
	for _, g := range p.graphs {
		group := string(g.Group())
		inputs[group] = []string{}
		for _, in := range g.InputStreams() {
			inputs[group] = append(inputs[group], in.Topic())
		}
	}
	if p.relay != nil {
		inputs[p.relay.group] = []string{p.relay.table}
	}
	out := offsets{}
	for group, topics := range inputs {
		out[group] = map[string]map[int32]int64{}
		for _, topic := range topics {
			if err := client.RefreshMetadata(topic); err != nil {
				return nil, err
			}
			parts, err := client.Partitions(topic)
			if err != nil {
				return nil, fmt.Errorf("partitions of %s: %w", topic, err)
			}
			out[group][topic] = map[int32]int64{}
			for _, part := range parts {
				end, err := client.GetOffset(topic, part, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("end offset of %s/%d: %w", topic, part, err)
				}
				out[group][topic][part] = end
			}
		}
	}
	return out, nil
}

// committed returns the committed offsets of the partitions in of, -1 for
// none.
func (p *Processor) committed(admin sarama.ClusterAdmin, of offsets) (offsets, error) {
	out := offsets{}
	for group, topics := range of {
		req := map[string][]int32{}
		for topic, parts := range topics {
			for part := range parts {
				req[topic] = append(req[topic], part)
			}
		}
		out[group] = map[string]map[int32]int64{}
		if len(req) == 0 {
			continue
		}
		res, err := admin.ListConsumerGroupOffsets(group, req)
		if err != nil {
			return nil, err
		}
		for topic, parts := range topics {
			out[group][topic] = map[int32]int64{}
			for part := range parts {
				committed := int64(-1)
				if b := res.GetBlock(topic, part); b != nil && b.Err == sarama.ErrNoError {
					committed = b.Offset
				}
				out[group][topic][part] = committed
			}
		}
	}
	return out, nil
}

// behindOf names a group and partition whose committed offset is more than
// one below the end it must reach, "" when none is.
func behindOf(ends, committed offsets) string {
	for group, topics := range ends {
		for topic, parts := range topics {
			for part, end := range parts {
				if c := committed[group][topic][part]; end > 0 && c < end-1 {
					return fmt.Sprintf("%s on %s/%d at %d of %d", group, topic, part, c, end)
				}
			}
		}
	}
	return ""
}

// measureLag records each group's lag: the records between its committed
// offsets (the start, for none) and the ends.
func (p *Processor) measureLag(ends, committed offsets) {
	lag := map[string]int64{}
	for group, topics := range ends {
		for topic, parts := range topics {
			for part, end := range parts {
				lag[group] += end - max(committed[group][topic][part], 0)
			}
		}
		p.counters.promLag.WithLabelValues(group).Set(float64(lag[group]))
	}
	p.lagMu.Lock()
	p.lag = lag
	p.lagMu.Unlock()
}
