package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pgx/v5"
)

// Phase is what a Capture is doing.
type Phase string

// The phases of a Capture, as [Capture.Status] reports them.
const (
	// PhaseStarting: Run checks PostgreSQL and Kafka, makes sure the
	// publication, the slot and the topics exist.
	PhaseStarting Phase = "starting"
	// PhaseSnapshot: Run reads the rows the tables hold.
	PhaseSnapshot Phase = "snapshot"
	// PhaseStreaming: Run publishes the changes the slot sends.
	PhaseStreaming Phase = "streaming"
	// PhasePaused: Run holds the slot without reading it ([Capture.Pause]).
	PhasePaused Phase = "paused"
	// PhaseRestarting: Run reconnects to PostgreSQL and goes on from its
	// checkpoint ([Capture.Restart], or new tables of a pattern).
	PhaseRestarting Phase = "restarting"
	// PhaseStopped: Run returned nil; PhaseFailed: it returned an error.
	PhaseStopped Phase = "stopped"
	PhaseFailed  Phase = "failed"
)

// Status is what a Capture is doing and how far it got, for operators
// ([Capture.Status]).
type Status struct {
	Phase Phase
	// Paused reports that Pause was asked and Resume was not: it holds from
	// the request, while Phase says paused once the loop obeys it (a
	// snapshot runs to its end first).
	Paused bool
	// Error is why Run failed (PhaseFailed).
	Error string

	Slot, Publication, TopicPrefix string
	// Tables are the captured tables, schema.table.
	Tables []string

	// ConfirmedLSN is the position last confirmed to PostgreSQL: the slot
	// retains the WAL after it. ServerLSN is the end of the WAL as the
	// server last reported it; LagBytes the difference.
	ConfirmedLSN, ServerLSN change.LSN
	LagBytes                int64
	// Committed is the position of the last change committed to Kafka
	// (with its checkpoint); LastCommitTime the source commit time of the
	// last transaction published.
	Committed      change.Position
	LastCommitTime time.Time

	// Snapshot is the progress of the last snapshot Run started, nil when
	// it started none.
	Snapshot *SnapshotProgress

	// DeadLettered and Skipped are Stats' counters; Restarts counts the
	// restarts in place (Restart, new tables).
	DeadLettered, Skipped int64
	Restarts              int
}

// SnapshotProgress is how far a snapshot got.
type SnapshotProgress struct {
	Tables []string
	// Rows were published; EstimatedRows is PostgreSQL's estimate of the
	// tables' rows (0 when it has none).
	Rows, EstimatedRows int64
	Started             time.Time
	Done                bool
}

// ErrNotStreaming is returned by the control methods of a Capture whose Run
// is not running.
var ErrNotStreaming = errors.New("capture is not running")

// errRestart ends a stream that Run restarts in place: it committed what
// was produced and confirmed it, and goes on from there over a new
// replication connection.
var errRestart = errors.New("capture restarting in place")

// control is the state a Capture shares with the goroutines that watch and
// steer it: what Run does, what it was asked to do, and the figures of its
// status. The replication loop reads the requests and writes the positions
// with atomics, so that watching it costs the loop no lock per message.
type control struct {
	paused, restart   atomic.Bool // asked; restart until the loop takes it
	confirmed, server atomic.Uint64

	mu         sync.Mutex
	phase      Phase
	err        string
	running    bool
	wake       context.CancelFunc // ends the loop's current wait
	tables     []string
	committed  change.Position
	commitTime time.Time
	snapshot   *SnapshotProgress
	restarts   int
}

func (c *control) setPhase(p Phase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = p
}

// finished records how Run ended.
func (c *control) finished(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.phase = false, PhaseStopped
	if err != nil {
		c.phase, c.err = PhaseFailed, err.Error()
	}
}

// request records a control request and ends the loop's wait.
func (c *control) request(f func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return ErrNotStreaming
	}
	f()
	if c.wake != nil {
		c.wake()
	}
	return nil
}

// wakeContext returns a context of ctx that the next request ends: the
// loop waits for the slot, or while paused, under it, and takes a new one
// once a request ended it.
func (c *control) wakeContext(ctx context.Context) context.Context {
	wctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake != nil {
		c.wake()
	}
	c.wake = cancel
	return wctx
}

func (c *control) observe(f func(c *control)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// Pause stops publishing: the replication loop commits the open Kafka
// transaction and stops reading the slot, but goes on confirming the
// committed position to PostgreSQL (at least every 10s, within
// wal_sender_timeout), so that the walsender stays and the slot holds every
// change made meanwhile, until [Capture.Resume]. A snapshot in progress
// runs to its end first. It returns at once; Status tells when the loop
// paused. It fails with [ErrNotStreaming] unless Run is running.
func (c *Capture) Pause() error { return c.ctl.request(func() { c.ctl.paused.Store(true) }) }

// Resume undoes Pause: the loop reads the slot again from where it stopped,
// so the changes made while it was paused are published, each once.
func (c *Capture) Resume() error { return c.ctl.request(func() { c.ctl.paused.Store(false) }) }

// Restart asks Run to restart in place, as a new start would but without
// ending: it commits what it produced, confirms it, closes the replication
// connection, looks at the tables again (new tables of a pattern are added,
// and snapshotted), reconnects and goes on from its checkpoint, skipping
// what Kafka holds already. A paused capture stays paused.
func (c *Capture) Restart() error { return c.ctl.request(func() { c.ctl.restart.Store(true) }) }

// Tables returns the captured tables, schema.table: those of Config.Tables
// as Run resolved them, with the tables of a pattern created since. Before
// Run resolved them it returns nil. A new table is listed as soon as capture
// decided to add it, before its snapshot is taken and streaming goes on:
// Status tells when capture streams again (Restarts counts the restart).
func (c *Capture) Tables() []string {
	c.ctl.mu.Lock()
	defer c.ctl.mu.Unlock()
	return slices.Clone(c.ctl.tables)
}

// Status returns what the capture is doing and how far it got. It is safe
// to call at any time, from any goroutine.
func (c *Capture) Status() Status {
	c.ctl.mu.Lock()
	defer c.ctl.mu.Unlock()
	s := Status{
		Phase: c.ctl.phase, Paused: c.ctl.paused.Load(), Error: c.ctl.err,
		Slot: c.cfg.Slot, Publication: c.cfg.Publication, TopicPrefix: c.cfg.TopicPrefix,
		Tables:       slices.Clone(c.ctl.tables),
		ConfirmedLSN: change.LSN(c.ctl.confirmed.Load()), ServerLSN: change.LSN(c.ctl.server.Load()),
		Committed: c.ctl.committed, LastCommitTime: c.ctl.commitTime,
		DeadLettered: c.deadLettered.Load(), Skipped: c.skipped.Load(), Restarts: c.ctl.restarts,
	}
	if s.Phase == "" {
		s.Phase = PhaseStarting
	}
	if s.ServerLSN > s.ConfirmedLSN {
		s.LagBytes = int64(s.ServerLSN - s.ConfirmedLSN)
	}
	if p := c.ctl.snapshot; p != nil {
		cp := *p
		cp.Tables = slices.Clone(p.Tables)
		s.Snapshot = &cp
	}
	return s
}

// snapshotStarted and snapshotProgress record a snapshot's progress for
// Status; the snapshot loop calls them through Config.SnapshotProgress.
func (c *control) snapshotStarted(tables []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = PhaseSnapshot
	c.snapshot = &SnapshotProgress{Tables: slices.Clone(tables), Started: time.Now()}
}

func (c *control) snapshotProgress(done, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshot != nil {
		c.snapshot.Rows, c.snapshot.EstimatedRows = done, total
	}
}

func (c *control) snapshotDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshot != nil {
		c.snapshot.Done = true
	}
}

// holdPaused commits the open Kafka transaction, so that nothing waits in
// it while the loop is paused, notes the server's WAL end, and says the
// loop paused.
func (c *Capture) holdPaused(ctx context.Context, conn *pgx.Conn) error {
	if err := c.pub.commit(ctx); err != nil {
		return fmt.Errorf("commit before pausing: %w", err)
	}
	// The slot sends nothing the loop reads: ask the server how far its
	// WAL goes, for the lag Status reports.
	var end string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&end); err == nil {
		if lsn, err := change.ParseLSN(end); err == nil {
			c.observeServer(lsn)
		}
	}
	c.ctl.observe(func(ctl *control) {
		if ctl.phase != PhasePaused {
			ctl.phase = PhasePaused
			c.log.Info("capture paused", "confirmed", c.pub.durable.String(), "position", c.pub.last.String())
		}
	})
	return nil
}

// pauseUntil holds the loop while it is paused: it waits until a request
// ends wake, or next, whichever comes first.
func pauseUntil(wake context.Context, next time.Time) {
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	select {
	case <-wake.Done():
	case <-t.C:
	}
}
