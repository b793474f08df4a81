package inspect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/jackc/pgx/v5"
)

// Slot is a logical replication slot as PostgreSQL reports it.
type Slot struct {
	Name string `json:"name"`
	// Exists is false when the database has no slot of that name.
	Exists bool `json:"exists"`
	// Active tells whether a connection streams from the slot (a running
	// capture), ActivePID its server process.
	Active    bool  `json:"active"`
	ActivePID int32 `json:"active_pid,omitempty"`
	// Confirmed is the position capture confirmed (everything before it is
	// in Kafka), Restart the oldest WAL the slot keeps, ServerWAL the
	// server's current WAL position.
	Confirmed change.LSN `json:"confirmed_flush_lsn"`
	Restart   change.LSN `json:"restart_lsn"`
	ServerWAL change.LSN `json:"server_wal_lsn"`
	// PendingBytes is the WAL between Confirmed and ServerWAL: what capture
	// has not confirmed yet. RetainedBytes is the WAL the slot keeps on the
	// server's disk (from Restart).
	PendingBytes  int64 `json:"pending_wal_bytes"`
	RetainedBytes int64 `json:"retained_wal_bytes"`
	// WALStatus is PostgreSQL's: reserved, extended, unreserved or lost.
	WALStatus string `json:"wal_status"`
	// BehindMillis is how far capture's confirmations trail the server, in
	// milliseconds: the flush lag PostgreSQL measures for the slot's
	// connection (0 once caught up); nil while the slot is inactive.
	BehindMillis *int64 `json:"behind_ms"`
}

// ReadSlot reads the slot named slot of the database dsn connects to.
func ReadSlot(ctx context.Context, dsn, slot string) (Slot, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return Slot{}, fmt.Errorf("PostgreSQL DSN is malformed (%v); use postgres://user:password@host:port/db", redact.URL(err.Error()))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Slot{}, fmt.Errorf("PostgreSQL unreachable at %s: %v; check --pg-dsn and that PostgreSQL is running",
			net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), innermost(err))
	}
	defer conn.Close(context.Background())
	s := Slot{Name: slot}
	var pid *int32
	var confirmed, restart, server *string
	var pending, retained, lag *int64
	var walsender bool
	err = conn.QueryRow(ctx, `
		SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text, s.restart_lsn::text, coalesce(s.wal_status, ''),
		       pg_current_wal_lsn()::text,
		       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::int8,
		       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::int8,
		       (SELECT (extract(epoch FROM r.flush_lag) * 1000)::int8 FROM pg_stat_replication r WHERE r.pid = s.active_pid),
		       EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.pid = s.active_pid)
		FROM pg_replication_slots s
		WHERE s.slot_name = $1 AND s.database = current_database()`, slot).
		Scan(&s.Active, &pid, &confirmed, &restart, &s.WALStatus, &server, &pending, &retained, &lag, &walsender)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read replication slot %s: %w", slot, err)
	}
	s.Exists = true
	if pid != nil {
		s.ActivePID = *pid
	}
	for _, f := range []struct {
		text *string
		lsn  *change.LSN
	}{{confirmed, &s.Confirmed}, {restart, &s.Restart}, {server, &s.ServerWAL}} {
		if f.text != nil {
			if *f.lsn, err = change.ParseLSN(*f.text); err != nil {
				return s, fmt.Errorf("replication slot %s: %w", slot, err)
			}
		}
	}
	if pending != nil {
		s.PendingBytes = max(*pending, 0)
	}
	if retained != nil {
		s.RetainedBytes = max(*retained, 0)
	}
	if s.Active && walsender {
		// PostgreSQL clears the lag once the connection has caught up.
		behind := int64(0)
		if lag != nil {
			behind = *lag
		}
		s.BehindMillis = &behind
	}
	return s, nil
}

// innermost returns the innermost error's message, which names the actual
// failure (connection refused, password authentication failed, ...), on one
// line: pgx joins the failures of its attempts (with TLS, without) with
// newlines.
func innermost(err error) string {
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
		err = next
	}
	lines := strings.Split(err.Error(), "\n")
	return strings.Join(slices.Compact(lines), "; ")
}
