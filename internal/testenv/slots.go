package testenv

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// DropSlot drops a test's replication slot when the test is done with it,
// so that no slot is left behind holding WAL and one of
// max_replication_slots: it waits for the walsender of a capture stopped a
// moment ago to let go of the slot, ends the walsender after 30 seconds
// (the test is over: whatever still reads the slot is a leftover), and drops
// the slot. A slot that does not exist is no error: there is nothing to do.
func DropSlot(ctx context.Context, db *pgx.Conn, slot string) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var pid *int32
		err := db.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid)
		if err != nil { // gone, or PostgreSQL with it
			return
		}
		if pid == nil {
			break
		}
		if time.Now().After(deadline) {
			db.Exec(ctx, "SELECT pg_terminate_backend($1)", *pid)
		}
	}
	db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", slot)
}
