package processors

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backoff between the attempts of [Processor.retry].
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// retry runs op until it succeeds, fails with an error retryable says not
// to retry, ctx ends, or, when limit is above zero, it has kept failing for
// limit. It waits between attempts with exponential backoff, from 100ms up
// to 5s, and logs each failure, naming service. It returns op's last error:
// on giving up, wrapped to say after how long; when ctx ends, joined with
// ctx's error.
func (p *Processor) retry(ctx context.Context, service string, limit time.Duration, retryable func(error) bool, op func() error) error {
	start := time.Now()
	backoff := firstBackoff
	for {
		err := op()
		if err == nil || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		if limit > 0 && time.Since(start)+backoff > limit {
			return fmt.Errorf("gave up after %s: %w", limit, err)
		}
		p.counters.retry(service)
		p.cfg.Logger.Warn(service+" failed; retrying", "topology", p.topo.Name, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
