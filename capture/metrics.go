package capture

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are capture's Prometheus metrics, registered with
// Config.Metrics. They answer what operators ask of a CDC pipeline: is it
// moving (events, transactions), is it behind (lag), is data being set aside
// (dead letters), and how far a snapshot got.
type metrics struct {
	events       *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	skipped      prometheus.Counter
	transactions prometheus.Counter
	confirmedLSN prometheus.Gauge
	serverLSN    prometheus.Gauge
	lagBytes     prometheus.Gauge
	commitTime   prometheus.Gauge
	snapshotRows *prometheus.CounterVec
	retries      *prometheus.CounterVec

	incrementalRows    *prometheus.CounterVec
	incrementalPending prometheus.Gauge
	signals            *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, slot string) *metrics {
	labels := prometheus.Labels{"slot": slot}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_events_total", ConstLabels: labels,
			Help: "Change events published, by table and op (c, u, d, r).",
		}, []string{"table", "op"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_dead_letters_total", ConstLabels: labels,
			Help: "Changes sent to the dead-letter topic because they could not be encoded, by table.",
		}, []string{"table"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_capture_skipped_total", ConstLabels: labels,
			Help: "Changes PostgreSQL sent again after a restart that Kafka already held.",
		}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cdcflow_capture_kafka_transactions_total", ConstLabels: labels,
			Help: "Kafka transactions committed (change records plus checkpoint).",
		}),
		confirmedLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_capture_confirmed_lsn", ConstLabels: labels,
			Help: "The slot position capture confirmed to PostgreSQL: everything before it is committed in Kafka.",
		}),
		serverLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_capture_server_wal_lsn", ConstLabels: labels,
			Help: "The end of PostgreSQL's WAL as the server last reported it.",
		}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_capture_lag_bytes", ConstLabels: labels,
			Help: "WAL between the server's last reported end and the confirmed position: what the slot retains for capture.",
		}),
		commitTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_capture_last_commit_timestamp_seconds", ConstLabels: labels,
			Help: "Source commit time of the last transaction published; time() minus it is the delay while changes flow.",
		}),
		snapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_snapshot_rows_total", ConstLabels: labels,
			Help: "Rows read by snapshots, by table.",
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_retries_total", ConstLabels: labels,
			Help: "Failed attempts at a service that capture waits out and retries after a backoff, by service (registry).",
		}, []string{"service"}),
		incrementalRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_incremental_snapshot_rows_total", ConstLabels: labels,
			Help: "Rows incremental snapshots published, by table (rows a newer streamed change replaced are not counted).",
		}, []string{"table"}),
		incrementalPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdcflow_capture_incremental_snapshot_tables", ConstLabels: labels,
			Help: "Tables whose incremental snapshot is being read or waits its turn.",
		}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcflow_capture_signals_total", ConstLabels: labels,
			Help: "Signals read from the signalling table, by type (execute-snapshot, stop-snapshot, log, unknown) and result (applied, ignored).",
		}, []string{"type", "result"}),
	}
	m.retries.WithLabelValues("registry") // shown at 0 until the registry first fails
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.deadLetters, m.skipped, m.transactions,
			m.confirmedLSN, m.serverLSN, m.lagBytes, m.commitTime, m.snapshotRows, m.retries,
			m.incrementalRows, m.incrementalPending, m.signals} {
			reg.MustRegister(c)
		}
	}
	return m
}
