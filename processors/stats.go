package processors

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts what a processor did since it was built.
type Stats struct {
	// Changes is how many change events its nodes handled (for a
	// projection: domain events).
	Changes int64
	// Duplicates is how many of them a sink had applied already (redelivered
	// or replayed changes), and so changed nothing.
	Duplicates int64
	// DeadLetters is how many records went to the dead-letter topic.
	DeadLetters int64
	// Late is how many changes a Windowed node applied late: the row's new
	// version fell in windows that had closed (their grace was over), and
	// counts in none of them.
	Late int64
	// Compacted is how many keys of its tables the processor compacted:
	// keys of a read model's tables that held only markers of deleted rows
	// older than Config.MarkerRetention (deleted), and keys of a
	// projection's table whose deleted aggregates' entries that old were
	// dropped.
	Compacted int64
}

// Stats returns the processor's counters. It is safe to call concurrently
// with Run.
func (p *Processor) Stats() Stats {
	c := p.counters
	return Stats{Changes: c.changes.Load(), Duplicates: c.duplicates.Load(), DeadLetters: c.deadLetters.Load(), Late: c.late.Load(),
		Compacted: c.compactions.Load()}
}

// Why a record went to the dead-letter topic: the reason label of
// cdcflow_processor_dead_letters_total.
const (
	// reasonMalformed: the record cannot be decoded.
	reasonMalformed = "malformed"
	// reasonUnapplicable: it decodes, but a node or a sink cannot apply it.
	reasonUnapplicable = "unapplicable"
)

// counters count what a processor does, for [Stats] and, when
// [Config.Metrics] is set, as Prometheus metrics labelled with the
// topology's name.
type counters struct {
	changes, duplicates, deadLetters, late, compactions atomic.Int64

	promChanges, promDuplicates, promLate, promCompacted prometheus.Counter
	promDeadLetters                                      *prometheus.CounterVec // by input topic and reason
	promRetries                                          *prometheus.CounterVec // by service
	promFailures                                         prometheus.Counter
	promLatency                                          prometheus.Histogram
	promLag                                              *prometheus.GaugeVec // by consumer group
	promReady                                            prometheus.Gauge
}

func newCounters(topology string, reg prometheus.Registerer) (*counters, error) {
	c := &counters{
		promChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_processor_changes_total",
			Help: "Change events (for a projection: domain events) the topology's nodes handled.",
		}),
		promDuplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_processor_duplicates_total",
			Help: "Changes a sink had applied already (redelivered or replayed), which changed nothing.",
		}),
		promLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_processor_late_changes_total",
			Help: "Changes a windowed node applied late: the row's new version fell in windows whose grace was over, and counts in none of them.",
		}),
		promCompacted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_processor_markers_compacted_total",
			Help: "Markers of deleted rows dropped from read model and projection tables once older than the marker retention.",
		}),
		promDeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_processor_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by input topic and reason (malformed: cannot be decoded; unapplicable: a node or sink cannot apply it).",
		}, []string{"topic", "reason"}),
		promRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_processor_retries_total",
			Help: "Failed attempts at a service that were retried after a backoff, by service.",
		}, []string{"service"}),
		promFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_processor_failures_total",
			Help: "Errors the processor stopped on (a sink that kept failing, state it could not read); the change was left uncommitted.",
		}),
		promLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdcflow_processor_apply_latency_seconds",
			Help:    "From a change's commit in the source to its write to a sink (Redis, Elasticsearch, the event topic).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16), // 5ms to ~3 minutes
		}),
		promLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcflow_processor_lag_records",
			Help: "Records in the inputs of a consumer group of the topology that the group has not committed yet, by group.",
		}, []string{"group"}),
		promReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_processor_ready",
			Help: "1 once the processor has caught up with its inputs since it started, 0 before.",
		}),
	}
	if reg == nil {
		return c, nil
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"topology": topology}, reg)
	var errs [10]error
	c.promChanges, errs[0] = register(reg, c.promChanges)
	c.promDuplicates, errs[1] = register(reg, c.promDuplicates)
	c.promDeadLetters, errs[2] = register(reg, c.promDeadLetters)
	c.promRetries, errs[3] = register(reg, c.promRetries)
	c.promFailures, errs[4] = register(reg, c.promFailures)
	c.promLatency, errs[5] = register(reg, c.promLatency)
	c.promLag, errs[6] = register(reg, c.promLag)
	c.promReady, errs[7] = register(reg, c.promReady)
	c.promLate, errs[8] = register(reg, c.promLate)
	c.promCompacted, errs[9] = register(reg, c.promCompacted)
	return c, errors.Join(errs[:]...)
}

// register registers col with reg, or returns the collector a processor of
// the same topology registered before (a restart within the process).
func register[C prometheus.Collector](reg prometheus.Registerer, col C) (C, error) {
	err := reg.Register(col)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return col, fmt.Errorf("register metrics: %w", err)
	}
	return col, nil
}

func (c *counters) change() {
	c.changes.Add(1)
	c.promChanges.Inc()
}

func (c *counters) duplicate() {
	c.duplicates.Add(1)
	c.promDuplicates.Inc()
}

func (c *counters) lateChange() {
	c.late.Add(1)
	c.promLate.Inc()
}

func (c *counters) deadLetter(topic, reason string) {
	c.deadLetters.Add(1)
	c.promDeadLetters.WithLabelValues(topic, reason).Inc()
}

func (c *counters) compacted() {
	c.compactions.Add(1)
	c.promCompacted.Inc()
}

func (c *counters) retry(service string) { c.promRetries.WithLabelValues(service).Inc() }

func (c *counters) failure() { c.promFailures.Inc() }

// applied records that a change committed in the source at commitMs (Unix
// milliseconds; 0 when unknown) reached a sink now.
func (c *counters) applied(commitMs int64) {
	if commitMs > 0 {
		c.promLatency.Observe(max(0, time.Since(time.UnixMilli(commitMs)).Seconds()))
	}
}
