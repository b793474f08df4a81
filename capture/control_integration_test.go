package capture_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// walsender is what pg_stat_replication says of the fixture's walsender.
type walsender struct {
	pid   int32
	reply time.Time // the last status update capture sent
}

func (f *fixture) walsender() walsender {
	f.t.Helper()
	var w walsender
	err := f.db.QueryRow(context.Background(), `SELECT r.pid, r.reply_time FROM pg_stat_replication r
		JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`, f.name).Scan(&w.pid, &w.reply)
	if err != nil {
		f.t.Fatalf("walsender of slot %s: %v", f.name, err)
	}
	return w
}

// TestPauseHoldsTheSlotAndResumePublishesOnce pauses a capture whose
// walsender times out after 3s without news (wal_sender_timeout) for five
// times as long while rows are written: nothing is published meanwhile, the
// walsender stays (the same process, getting status updates all along), and
// after Resume every row written meanwhile is published, once.
func TestPauseHoldsTheSlotAndResumePublishesOnce(t *testing.T) {
	f := newFixture(t)
	f.dsn += "&options=" + strings.ReplaceAll(url.QueryEscape("-c wal_sender_timeout=3s"), "+", "%20")
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	c := f.startCapture(capture.Config{})
	topic := serde.Topic(f.prefix, "public", f.name)
	f.exec("INSERT INTO " + f.name + " VALUES (1)")
	f.consume(topic, 1)

	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, capture.PhasePaused)
	before := f.walsender()
	for i := 2; i <= 16; i++ {
		f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d)", f.name, i))
		time.Sleep(time.Second)
	}
	during := f.walsender()
	if during.pid != before.pid || !during.reply.After(before.reply.Add(10*time.Second)) {
		t.Errorf("while paused the walsender went from pid %d (reply %s) to pid %d (reply %s): it should be the same one, with status updates all along",
			before.pid, before.reply.Format(time.RFC3339Nano), during.pid, during.reply.Format(time.RFC3339Nano))
	}
	if recs := f.consumeAtLeast(topic, 1, 30*time.Second, 3*time.Second); len(recs) != 1 {
		t.Fatalf("%d records published while paused, want none after the first", len(recs)-1)
	}
	st := c.Status()
	if st.Phase != capture.PhasePaused || !st.Paused || st.Committed.CommitLSN == 0 || st.ServerLSN <= st.ConfirmedLSN || st.LagBytes <= 0 {
		t.Errorf("status while paused: %+v", st)
	}

	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	f.exec("INSERT INTO " + f.name + " VALUES (17)")
	recs := f.consumeAtLeast(topic, 17, 60*time.Second, 2*time.Second)
	seen := map[int32]int{}
	for _, r := range recs {
		seen[r.event.After["id"].(int32)]++
	}
	for i := int32(1); i <= 17; i++ {
		if seen[i] != 1 {
			t.Errorf("row %d published %d times, want once", i, seen[i])
		}
	}
	if len(recs) != 17 {
		t.Errorf("%d records, want 17", len(recs))
	}
	if st := c.Status(); st.Phase != capture.PhaseStreaming || st.Paused {
		t.Errorf("status after Resume: %+v", st)
	}
}

// TestRestartInPlace restarts a capture while rows are written: it
// reconnects and goes on, each row published once.
func TestRestartInPlace(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", f.name))
	c := f.startCapture(capture.Config{})
	for i := 1; i <= 60; i++ {
		f.exec(fmt.Sprintf("INSERT INTO %s VALUES (%d)", f.name, i))
		if i%20 == 0 {
			if err := c.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs := f.consumeAtLeast(serde.Topic(f.prefix, "public", f.name), 60, 60*time.Second, 2*time.Second)
	seen := map[int32]int{}
	for _, r := range recs {
		if r.event.Op != change.OpCreate {
			t.Errorf("record %+v, want creates only", r.event)
		}
		seen[r.event.After["id"].(int32)]++
	}
	for i := int32(1); i <= 60; i++ {
		if seen[i] != 1 {
			t.Errorf("row %d published %d times, want once", i, seen[i])
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for st := c.Status(); st.Restarts != 3 || st.Phase != capture.PhaseStreaming; st = c.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want streaming after 3 restarts", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPhase waits until c is in phase p.
func waitPhase(t *testing.T, c *capture.Capture, p capture.Phase) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.Status().Phase != p {
		if time.Now().After(deadline) {
			t.Fatalf("capture is %s after 60s, want %s", c.Status().Phase, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
