package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// objectInUse is the SQLSTATE of START_REPLICATION on a slot another
// connection holds.
const objectInUse = "55006"

// startReplication starts streaming from the slot at start. While another
// connection holds the slot (a capture killed a moment ago whose walsender
// lives on until PostgreSQL notices, or a second capture of the same slot),
// it retries every second for SlotBusyTimeout.
func (c *Capture) startReplication(ctx context.Context, repl *pgconn.PgConn, start change.LSN) error {
	opts := pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", c.cfg.Publication), "messages 'true'"},
	}
	deadline := time.Now().Add(c.cfg.SlotBusyTimeout)
	for logged := false; ; {
		err := pglogrepl.StartReplication(ctx, repl, c.cfg.Slot, pglogrepl.LSN(start), opts)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != objectInUse {
			if err != nil {
				return fmt.Errorf("start replication from slot %s: %w", c.cfg.Slot, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replication slot %s is still in use after %v (%s): stop the other capture of this slot, or end its connection with pg_terminate_backend(active_pid) from pg_replication_slots",
				c.cfg.Slot, c.cfg.SlotBusyTimeout, pgErr.Message)
		}
		if !logged {
			c.log.Warn("replication slot in use; waiting for it to be released", "slot", c.cfg.Slot, "detail", pgErr.Message, "timeout", c.cfg.SlotBusyTimeout)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// outageStatusInterval bounds the interval of status updates while capture
// waits for the schema registry and reads nothing from PostgreSQL: the
// updates keep the walsender from timing out (wal_sender_timeout, 60s by
// default) however long the wait.
const outageStatusInterval = 10 * time.Second

// commitPollInterval is how often stream, while it waits for the
// replication stream, looks whether the transaction committing in the
// background committed.
const commitPollInterval = 20 * time.Millisecond

// stream follows the replication stream until ctx ends or an error stops it.
// It assembles each XLogData message and emits the outputs, commits the
// Kafka transaction when it is due, confirms the durable position every
// StatusInterval (and when PostgreSQL asks) and writes heartbeats.
//
// While the schema registry is unavailable, stream keeps the outputs not yet
// emitted, stops reading the replication stream, goes on confirming and
// emits them again with backoff, for however long it takes; nothing is
// produced twice, and Kafka holds no transaction open meanwhile.
func (c *Capture) stream(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, asm *assembler) error {
	// Work on a message, once started, finishes even when ctx ends meanwhile
	// (a half-done Kafka commit would only be aborted and redone), unless it
	// hangs for 30s more; the loop then stops at its top.
	wctx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopWork := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancelWork) })
	defer stopWork()

	var (
		pending   []output // outputs of the last message not yet emitted
		outage    registryOutage
		sent      change.LSN
		err       error
		wake      = c.ctl.wakeContext(ctx) // ended by a Pause, Resume or Restart
		wasPaused bool
		recv      = struct { // the context of the wait for the next message
			ctx      context.Context
			cancel   context.CancelFunc
			deadline time.Time
		}{cancel: func() {}}
	)
	defer func() { recv.cancel() }()
	nextStatus, nextHeartbeat := time.Now(), time.Now()
	for {
		if ctx.Err() != nil {
			return c.shutdown(repl)
		}
		if wake.Err() != nil {
			wake = c.ctl.wakeContext(ctx) // before reading the requests: a later one ends it
		}
		if c.ctl.restart.Swap(false) {
			return c.restartInPlace(repl, "asked to restart")
		}
		paused := c.ctl.paused.Load()
		if err := c.pub.maybeCommit(wctx); err != nil {
			return c.stop(repl, err)
		}
		if !time.Now().Before(nextStatus) {
			if err := sendStatus(ctx, repl, c.pub.durable); err != nil {
				if ctx.Err() != nil {
					return c.shutdown(repl)
				}
				return err
			}
			c.metrics.confirmedLSN.Set(float64(c.pub.durable))
			c.ctl.confirmed.Store(uint64(c.pub.durable))
			if c.pub.durable != sent {
				c.log.Debug("confirmed position", "lsn", c.pub.durable.String())
				sent = c.pub.durable
			}
			interval := c.cfg.StatusInterval
			if len(pending) > 0 || paused {
				interval = min(interval, outageStatusInterval)
			}
			nextStatus = time.Now().Add(interval)
		}
		if paused && len(pending) == 0 {
			if err := c.holdPaused(wctx, conn); err != nil {
				return c.stop(repl, err)
			}
			wasPaused = true
			pauseUntil(wake, nextStatus)
			continue
		}
		if wasPaused {
			wasPaused = false
			c.ctl.setPhase(PhaseStreaming)
			c.log.Info("capture resumed", "position", c.pub.last.String())
		}
		if len(pending) > 0 { // waiting for the schema registry
			if wait := time.Until(outage.retryAt); wait > 0 {
				sleep(ctx, min(wait, time.Until(nextStatus)))
				continue
			}
			if pending, err = c.emitAll(wctx, pending, &outage); err != nil {
				return c.stop(repl, err)
			}
			continue
		}
		if c.refreshDue(time.Now()) && asm.tx == nil {
			added, err := c.newTables(ctx, conn)
			if err != nil {
				return c.shutdown(repl) // only when ctx ended
			}
			if len(added) > 0 {
				return c.restartInPlace(repl, fmt.Sprintf("new tables %v", added))
			}
		}
		if c.cfg.HeartbeatInterval > 0 && !time.Now().Before(nextHeartbeat) {
			if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, '')", HeartbeatPrefix); err != nil {
				if ctx.Err() != nil {
					return c.shutdown(repl)
				}
				return c.stop(repl, fmt.Errorf("write heartbeat: %w", err))
			}
			nextHeartbeat = time.Now().Add(c.cfg.HeartbeatInterval)
		}
		if err := c.incrementalStep(wctx, conn); err != nil {
			if ctx.Err() != nil {
				return c.shutdown(repl)
			}
			return c.stop(repl, err)
		}
		deadline := c.incrementalWake(nextStatus)
		if due := c.pub.began.Add(c.cfg.TransactionTime); c.pub.open && due.Before(deadline) {
			deadline = due
		}
		if due := time.Now().Add(commitPollInterval); c.pub.committing != nil && due.Before(deadline) {
			deadline = due // to confirm the commit's end soon after it
		}
		if c.cfg.HeartbeatInterval > 0 && nextHeartbeat.Before(deadline) {
			deadline = nextHeartbeat
		}
		if next := c.refresh.next; asm.tx == nil && !next.IsZero() && next.Before(deadline) {
			deadline = next
		}
		// A Pause or Restart ends the wait. The context of the wait is made
		// anew only when its deadline is later than this one, or passed:
		// making one per message cost more than decoding some messages.
		if recv.ctx == nil || recv.ctx.Err() != nil || deadline.Before(recv.deadline) {
			recv.cancel()
			recv.ctx, recv.cancel = context.WithDeadline(wake, deadline)
			recv.deadline = deadline
		}
		raw, err := repl.ReceiveMessage(recv.ctx)
		if err != nil {
			if ctx.Err() != nil {
				return c.shutdown(repl)
			}
			if pgconn.Timeout(err) || errors.Is(err, context.Canceled) {
				continue
			}
			return c.stop(repl, fmt.Errorf("receive from replication slot %s: %w", c.cfg.Slot, err))
		}
		switch msg := raw.(type) {
		case *pgproto3.ErrorResponse:
			return c.stop(repl, fmt.Errorf("replication stream error: %s (SQLSTATE %s)", msg.Message, msg.Code))
		case *pgproto3.CopyData:
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return c.stop(repl, fmt.Errorf("parse keepalive: %w", err))
				}
				c.observeServer(change.LSN(ka.ServerWALEnd))
				if ka.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return c.stop(repl, fmt.Errorf("parse XLogData: %w", err))
				}
				c.observeServer(change.LSN(xld.ServerWALEnd))
				outs, err := c.assemble(wctx, conn, asm, xld)
				if err != nil {
					return c.stop(repl, err)
				}
				if pending, err = c.emitAll(wctx, outs, &outage); err != nil {
					return c.stop(repl, err)
				}
			}
		}
	}
}

// assemble parses one XLogData message and hands it to asm, with the
// catalog's description of the columns of a Relation message.
func (c *Capture) assemble(ctx context.Context, conn *pgx.Conn, asm *assembler, xld pglogrepl.XLogData) ([]output, error) {
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return nil, fmt.Errorf("parse pgoutput message at %s: %w", xld.WALStart, err)
	}
	if m, ok := msg.(*pglogrepl.RelationMessage); ok {
		cols, err := relationColumns(ctx, conn, m)
		if err != nil {
			return nil, err
		}
		return nil, asm.relation(m, cols)
	}
	return asm.message(change.LSN(xld.WALStart), msg)
}

// emitAll emits outs in order. When the schema registry is unavailable it
// returns the outputs not yet emitted, the one that failed first, for
// stream to emit once outage says to try again; any other error stops
// capture.
func (c *Capture) emitAll(ctx context.Context, outs []output, outage *registryOutage) ([]output, error) {
	for i, o := range outs {
		err := c.emit(ctx, o)
		if errors.Is(err, serde.ErrRegistryUnavailable) {
			return outs[i:], c.registryFailed(ctx, outage, err)
		}
		if err != nil {
			return nil, err
		}
	}
	c.registryAnswered(outage)
	return nil, nil
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// observeServer records the server's WAL end and how far capture trails it.
func (c *Capture) observeServer(end change.LSN) {
	if end == 0 {
		return
	}
	c.metrics.serverLSN.Set(float64(end))
	c.ctl.server.Store(uint64(end))
	if end > c.pub.durable {
		c.metrics.lagBytes.Set(float64(end - c.pub.durable))
	} else {
		c.metrics.lagBytes.Set(0)
	}
}

// shutdown commits what was produced and confirms it before Run returns.
func (c *Capture) shutdown(repl *pgconn.PgConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.pub.commit(ctx); err != nil {
		c.log.Warn("commit on shutdown; the next start publishes those changes again", "err", err)
	}
	if err := sendStatus(ctx, repl, c.pub.durable); err != nil {
		c.log.Warn("confirm position on shutdown", "err", err)
	}
	c.log.Info("capture stopped", "confirmed", c.pub.durable.String(), "position", c.pub.last.String(), "skipped_already_published", c.skipped.Load(), "dead_lettered", c.deadLettered.Load())
	return nil
}

// stop aborts the open Kafka transaction after err and returns err: what
// was not committed is published again by the next start.
func (c *Capture) stop(repl *pgconn.PgConn, err error) error {
	err = c.pub.abort(err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := sendStatus(ctx, repl, c.pub.durable); serr != nil {
		c.log.Warn("confirm position after error", "err", serr)
	}
	return err
}

func sendStatus(ctx context.Context, repl *pgconn.PgConn, lsn change.LSN) error {
	p := pglogrepl.LSN(lsn)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: p, WALFlushPosition: p, WALApplyPosition: p,
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}
