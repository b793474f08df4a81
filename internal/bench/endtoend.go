package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/montanaflynn/stats"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// endToEnd: from a source commit to the metric it moves visible in Redis,
// through the running capture and the workload's first topology, at half the
// highest rate measured before (the lower of capture's OLTP rate and that
// topology's processing rate). c is that topology's processor, caught up.
func (b *Bench) endToEnd(ctx context.Context, st string, capt *process, c *processorChild) error {
	w := b.cfg.Workload
	ceiling := b.res.processRate
	if b.res.oltpRate > 0 {
		ceiling = min(ceiling, b.res.oltpRate)
	}
	target := ceiling / 2
	if target < 1 {
		return fmt.Errorf("no maximum rate measured to run at half of")
	}
	if _, _, err := c.waitStatus(ctx, "ready", 3*time.Minute, func(s processorStatus) bool { return s.Ready }); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, b.cfg.PGDSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr})
	defer rdb.Close()

	// Every every-th commit is a probe, about 25 a second.
	every := max(1, int(target/25))
	var mu sync.Mutex
	pending := map[int]time.Time{} // probe → when its commit returned
	var latencies []float64        // milliseconds
	var probeErr error
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			mu.Lock()
			ids := make([]int, 0, len(pending))
			for id := range pending {
				ids = append(ids, id)
			}
			mu.Unlock()
			if len(ids) > 0 {
				seen, err := w.Visible(ctx, rdb, st, ids)
				now := time.Now()
				mu.Lock()
				if err != nil && probeErr == nil {
					probeErr = err
				}
				for i, id := range ids {
					if err == nil && seen[i] {
						latencies = append(latencies, float64(now.Sub(pending[id]).Microseconds())/1000)
						b.log.Debug("probe visible", "probe", id, "committed", pending[id].Format(time.StampMilli), "latency", now.Sub(pending[id]))
						delete(pending, id)
					}
				}
				mu.Unlock()
			}
			select {
			case <-stopPoll:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	limiter := rate.NewLimiter(rate.Limit(target), 1)
	loadCtx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.Sizes.EndToEnd)*time.Second)
	defer cancel()
	var next, committed int
	var loadErr error
	var wg sync.WaitGroup
	var nextMu sync.Mutex
	started := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for limiter.Wait(loadCtx) == nil {
				nextMu.Lock()
				i := next
				next++
				nextMu.Unlock()
				if _, err := pool.Exec(ctx, w.Probe(st, i)); err != nil {
					nextMu.Lock()
					loadErr = err
					nextMu.Unlock()
					return
				}
				at := time.Now()
				nextMu.Lock()
				committed++
				nextMu.Unlock()
				if i%every == 0 {
					mu.Lock()
					pending[i] = at
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	loaded := time.Since(started)
	if loadErr != nil {
		close(stopPoll)
		return fmt.Errorf("load: %w", loadErr)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 || time.Now().After(deadline) || c.exited() || capt.exited() {
			break
		}
	}
	close(stopPoll)
	<-polled
	if probeErr != nil {
		return probeErr
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d of %d probes not visible in Redis 2 minutes after the load ended (capture: %s; processor: %s)",
			len(pending), len(pending)+len(latencies), capt.Tail(), c.Tail())
	}
	p50, _ := stats.Percentile(latencies, 50)
	p99, _ := stats.Percentile(latencies, 99)
	rss, err := c.memory("VmRSS")
	if err != nil {
		return err
	}
	b.res.EndToEnd = &EndToEnd{
		Topology: w.Topologies[0].Name, TargetRate: target, Rate: float64(committed) / loaded.Seconds(),
		Probes: len(latencies), P50ms: p50, P99ms: p99, ProcessorRSSMiB: float64(rss) / (1 << 20),
	}
	return c.stop()
}
