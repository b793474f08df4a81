package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// processing: the workload's topologies, each in a processor process of its
// own, over a topic capture filled with Processing changes, next to a bare
// franz-go consumer decoding the same records; then the end-to-end latency
// through capture and the first topology.
func (b *Bench) processing(ctx context.Context) error {
	w, n := b.cfg.Workload, b.cfg.Sizes.Processing
	st := b.stem("proc")
	defer b.cleanup(st, []string{st}, []string{st}, "DROP SCHEMA IF EXISTS "+st+" CASCADE")
	db, err := pgx.Connect(ctx, b.cfg.PGDSN)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	for _, s := range append([]string{"CREATE SCHEMA " + st}, w.Setup(st)...) {
		if _, err := db.Exec(ctx, s); err != nil {
			return err
		}
	}
	capt, err := b.startCapture(st, st, w.Tables)
	if err != nil {
		return err
	}
	defer capt.stop()
	if _, err := capt.waitMark(ctx, markStreaming, 2*time.Minute); err != nil {
		return err
	}
	last, err := commitMarked(ctx, db, w.Fill(st, n))
	if err != nil {
		return err
	}
	if _, err := b.waitCheckpoint(ctx, capt, st, last, 30*time.Minute); err != nil {
		return err
	}
	topic := serde.Topic(st, st, w.Tables[0])

	started := time.Now()
	baseline, err := b.bareConsumer(ctx, topic, n)
	if err != nil {
		return fmt.Errorf("bare consumer: %w", err)
	}
	b.log.Info("bare consumer", "records/s", int(baseline), "took", time.Since(started).Round(time.Millisecond))
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr})
	defer rdb.Close()
	var e2e *processorChild
	for _, t := range w.Topologies {
		before, err := redisUsed(ctx, rdb)
		if err != nil {
			return err
		}
		c, rate, rss, err := b.runTopology(ctx, st, t, n)
		if err != nil {
			return fmt.Errorf("topology %s: %w", t.Name, err)
		}
		// The first runs on for the end-to-end scenario (started again, its
		// group would wait for the stopped member's session to end).
		if t.Name == w.Topologies[0].Name {
			e2e = c
			defer c.stop()
		} else if err := c.stop(); err != nil {
			return fmt.Errorf("topology %s: %w", t.Name, err)
		}
		after, err := redisUsed(ctx, rdb)
		if err != nil {
			return err
		}
		if grown := after - before; grown > 1<<20 {
			b.res.Memory = append(b.res.Memory, MemoryFigure{What: "Redis memory the keys of topology " + t.Name + " take", MiB: float64(grown) / (1 << 20),
				Detail: fmt.Sprintf("used_memory grown over %d changes, %.0f bytes each (other work may write to Redis meanwhile)", n, float64(grown)/float64(n))})
		}
		b.res.add(Figure{
			Scenario: "processing, " + t.Name, Unit: "records/s", Target: 0.5, Baseline: "bare franz-go consume + Avro decode",
			Value: rate, BaselineValue: baseline,
			Detail: fmt.Sprintf("%d change records; processor RSS %.0f MiB after them", n, float64(rss)/(1<<20)),
		})
		b.res.Memory = append(b.res.Memory, MemoryFigure{What: "processor RSS (VmRSS) at steady state, topology " + t.Name, MiB: float64(rss) / (1 << 20)})
		if t.Name == w.Topologies[0].Name {
			b.res.processRate = rate
		}
	}
	// The end-to-end orders count in Redis too: the shared Redis holds
	// 256 MiB at most.
	if err := b.dropRedisKeys(ctx, st); err != nil {
		return fmt.Errorf("delete the processing scenario's Redis keys: %w", err)
	}
	return b.endToEnd(ctx, st, capt, e2e)
}

// bareConsumer is BareConsume over the bench's Kafka and registry.
func (b *Bench) bareConsumer(ctx context.Context, topic string, n int) (float64, error) {
	reg, err := sr.NewClient(sr.URLs(b.cfg.RegistryURL))
	if err != nil {
		return 0, err
	}
	return BareConsume(ctx, b.cfg.Brokers, reg, topic, n)
}

// BareConsume reads n change records of topic from its start with
// read_committed isolation and decodes each key and value with the
// registry's schemas (tombstones are skipped, not counted): the least a
// processor does, the processing scenarios' baseline. It returns changes/s
// from the first record to the n-th.
func BareConsume(ctx context.Context, brokers []string, reg *sr.Client, topic string, n int) (float64, error) {
	dec := serde.NewDecoder(reg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var first time.Time
	seen := 0
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return 0, fmt.Errorf("consume %s: after %d of %d changes: %w", topic, seen, n, err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if first.IsZero() {
				first = time.Now()
			}
			if r.Value == nil {
				continue // a tombstone
			}
			if _, err := dec.DecodeKey(ctx, r.Key); err != nil {
				return 0, err
			}
			if _, err := dec.DecodeEvent(ctx, r.Value); err != nil {
				return 0, err
			}
			seen++
		}
	}
	return float64(seen) / time.Since(first).Seconds(), nil
}

// countRecords counts the committed records of topic, until want or until
// none came for 5s.
func countRecords(ctx context.Context, brokers []string, topic string, want int) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for n < want {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		got := len(fs.Records())
		if got == 0 {
			break
		}
		n += got
	}
	return n, ctx.Err()
}

// processorStatus is what a processor child process prints, one JSON line
// every 50ms.
type processorStatus struct {
	Changes int64 `json:"changes"`
	Ready   bool  `json:"ready"`
}

// processorChild runs topology t as a child process (the bench binary's
// process command, see [RunProcessor]) and follows its status.
type processorChild struct {
	*process
	status atomic.Pointer[processorStatus]
}

func (b *Bench) startProcessor(st string, t Topology) (*processorChild, error) {
	c := &processorChild{}
	c.status.Store(&processorStatus{})
	p, err := startProcess(b.env(), nil, func(line string) {
		var s processorStatus
		if json.Unmarshal([]byte(line), &s) == nil {
			c.status.Store(&s)
		}
	}, b.cfg.Self, "process", "--topology", t.Name, "--stem", st)
	c.process = p
	return c, err
}

// waitStatus waits until the child's status satisfies cond.
func (c *processorChild) waitStatus(ctx context.Context, what string, timeout time.Duration, cond func(processorStatus) bool) (processorStatus, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		s := *c.status.Load()
		if cond(s) {
			return s, time.Now(), nil
		}
		if c.exited() {
			return s, time.Time{}, c.exitedError(what)
		}
		if time.Now().After(deadline) {
			return s, time.Time{}, fmt.Errorf("processor not %s within %v (status %+v); its last lines:\n%s", what, timeout, s, c.Tail())
		}
		select {
		case <-ctx.Done():
			return s, time.Time{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// runTopology starts topology t over the n records of the topic from their
// start, and returns the processor, running on, its records/s from its first
// change handled to its last, and its RSS once done.
func (b *Bench) runTopology(ctx context.Context, st string, t Topology, n int) (*processorChild, float64, int64, error) {
	c, err := b.startProcessor(st, t)
	if err != nil {
		return nil, 0, 0, err
	}
	rate, rss, err := b.measureTopology(ctx, c, t, n)
	if err != nil {
		c.stop()
		return nil, 0, 0, err
	}
	return c, rate, rss, nil
}

func (b *Bench) measureTopology(ctx context.Context, c *processorChild, t Topology, n int) (float64, int64, error) {
	want := int64(n * t.PerChange)
	first, t0, err := c.waitStatus(ctx, "handling changes", 3*time.Minute, func(s processorStatus) bool { return s.Changes > 0 })
	if err != nil {
		return 0, 0, err
	}
	_, t1, err := c.waitStatus(ctx, "done with the records", 30*time.Minute, func(s processorStatus) bool { return s.Changes >= want })
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(time.Second) // settled
	if s := *c.status.Load(); s.Changes != want {
		b.log.Warn("the processor handled more changes than the records make: is Topology.PerChange right?", "topology", t.Name, "changes", s.Changes, "want", want)
	}
	rss, err := c.memory("VmRSS")
	if err != nil {
		return 0, 0, err
	}
	return float64(want-first.Changes) / float64(t.PerChange) / t1.Sub(t0).Seconds(), rss, nil
}

// ProcessorArgs are a processor child process's settings.
type ProcessorArgs struct {
	Topology    Topology
	Stem        string // the schema, topic prefix, group and key prefix
	Brokers     []string
	RegistryURL string
	RedisAddr   string
}

// RunProcessor runs a topology of the bench's workload until ctx ends,
// printing its status to out as a JSON line every 50ms: it is the bench
// binary's process command, which the processing scenarios start.
func RunProcessor(ctx context.Context, a ProcessorArgs, out io.Writer, log *slog.Logger) error {
	reg, err := sr.NewClient(sr.URLs(a.RegistryURL))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: a.RedisAddr})
	defer rdb.Close()
	proc, err := processors.NewProcessor(a.Topology.New(a.Stem, a.Stem), processors.Config{
		Brokers: a.Brokers, Decoder: serde.NewDecoder(reg), Redis: rdb, KeyPrefix: a.Stem,
		Group: a.Stem + "-" + a.Topology.Name, DeadLetterTopic: a.Stem + ".dlq", Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	enc := json.NewEncoder(out)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
				return nil
			}
			return err
		case <-tick.C:
			if err := enc.Encode(processorStatus{Changes: proc.Stats().Changes, Ready: proc.Ready()}); err != nil {
				return err
			}
		}
	}
}

// redisUsed is Redis' used_memory, in bytes.
func redisUsed(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO memory: %w", err)
	}
	n, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis INFO memory: used_memory %q: %w", info["Memory"]["used_memory"], err)
	}
	return n, nil
}
