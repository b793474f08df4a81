package engine

import (
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
)

// Sample is one row's contribution to a metric: Value counts towards the
// Bucket of the Series, e.g. {"revenue_cents_per_day", "2026-11-21", 4250}.
type Sample struct {
	Series string
	Bucket string
	Value  int64
	// Ranked keeps the series as a ranking (a Redis sorted set, buckets
	// ordered by value: top customers by revenue) instead of a hash.
	Ranked bool
	// TTL, when set, expires the series that long after its last change:
	// for rolling windows, with one series per period (say, per hour of a
	// per-minute series).
	TTL time.Duration
}

// Metrics keeps metrics over a table's current rows.
type Metrics struct {
	Input string
	// Debezium marks an Input another Debezium connector writes.
	Debezium bool
	RowType  string
	// Decode reads a row into the user's row type; Contribute is the
	// user's measure function over it.
	Decode     func(change.Row) (any, error)
	Contribute func(row any) []Sample
	Err        error
}

// Describe implements Node.
func (n *Metrics) Describe() string {
	return fmt.Sprintf("metrics over %s (rows as %s)", n.Input, n.RowType)
}

// Validate implements Node.
func (n *Metrics) Validate() error {
	if n.Err != nil {
		return fmt.Errorf("metrics over %s: %w", n.Input, n.Err)
	}
	return nil
}

// Run implements Node.
func (n *Metrics) Run(rt Runtime) error { return rt.Metrics(n) }

// Measure returns what row, a row of the node's table, contributes. A nil
// row (a deleted one) contributes nothing.
func (n *Metrics) Measure(row change.Row) ([]Sample, error) {
	if row == nil {
		return nil, nil
	}
	if n.Decode == nil {
		return nil, n.Validate()
	}
	v, err := n.Decode(row)
	if err != nil {
		return nil, err
	}
	return n.Contribute(v), nil
}
