package capture

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

func TestSnapshotVisibility(t *testing.T) {
	s, err := parseSnapshot("4294967390:4294967400:4294967395,4294967397")
	if err != nil {
		t.Fatal(err)
	}
	// xids as pgoutput sends them: 32 bits, in the epoch of the snapshot
	// (4294967296 is epoch 1, xid 0).
	for _, tc := range []struct {
		name    string
		xid     uint32
		visible bool
	}{
		{"ended long before", 50, true},
		{"ended before xmin", 93, true},
		{"ended between xmin and xmax", 96, true},
		{"running", 99, false},
		{"running too", 101, false},
		{"started after", 104, false},
		{"far after", 10_000, false},
		{"previous epoch", 4_294_967_000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.visible(tc.xid); got != tc.visible {
				t.Errorf("visible(%d) = %v (full %d), want %v", tc.xid, got, s.full(tc.xid), tc.visible)
			}
		})
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:", "1:2:x"} {
		if _, err := parseSnapshot(bad); err == nil {
			t.Errorf("parseSnapshot(%q) succeeded", bad)
		}
	}
	if s, err := parseSnapshot("10:12:"); err != nil || len(s.xip) != 0 || !s.visible(11) {
		t.Errorf("parseSnapshot(10:12:) = %+v, %v", s, err)
	}
}

// TestKeyTracker: a chunk's row is dropped when the last change of its key
// streamed from a transaction the chunk's snapshot does not see.
func TestKeyTracker(t *testing.T) {
	k := newKeyTracker("public.t", []string{"a", "b"})
	text := func(a, b string) map[string]*string { return map[string]*string{"a": &a, "b": &b, "other": nil} }
	k.observe(90, rawChange{After: text("1", "x")})                          // committed before the chunk's snapshot
	k.observe(99, rawChange{After: text("2", "x")})                          // running when it was taken
	k.observe(105, rawChange{Before: text("3", "x")})                        // a delete after it
	k.observe(90, rawChange{Before: text("4", "x"), After: nil})             // key-only before image
	k.observe(106, rawChange{Before: text("5", "x"), After: text("6", "x")}) // the key changed
	k.observe(91, rawChange{After: map[string]*string{"a": nil}})            // no key: ignored
	s, _ := parseSnapshot("95:100:99")
	for key, want := range map[string]bool{"1\x00x": false, "2\x00x": true, "3\x00x": true, "4\x00x": false,
		"5\x00x": true, "6\x00x": true, "7\x00x": false} {
		if got := k.newer(key, s); got != want {
			t.Errorf("newer(%q) = %v, want %v", key, got, want)
		}
	}
	k.prune(s)
	if _, ok := k.xids["1\x00x"]; ok {
		t.Error("prune kept a change every later snapshot sees")
	}
	if _, ok := k.xids["2\x00x"]; !ok {
		t.Error("prune dropped a change of a running transaction")
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		name, typ, data string
		want            signalCommand
		err             string
	}{
		{name: "execute", typ: "execute-snapshot", data: `{"data-collections": ["public.orders", "items"], "type": "incremental"}`,
			want: signalCommand{typ: SignalExecuteSnapshot, tables: []string{"public.orders", "public.items"}}},
		{name: "type in capitals, none given", typ: "Execute-Snapshot", data: `{"data-collections": ["public.*"]}`,
			want: signalCommand{typ: SignalExecuteSnapshot, tables: []string{"public.*"}}},
		{name: "additional conditions", typ: "execute-snapshot",
			data: `{"data-collections": ["public.orders"], "type": "INCREMENTAL", "additional-conditions": [{"data-collection": "public.orders", "filter": "status = 'paid'"}]}`,
			want: signalCommand{typ: SignalExecuteSnapshot, tables: []string{"public.orders"}, filters: map[string]string{"public.orders": "status = 'paid'"}}},
		{name: "stop all", typ: "stop-snapshot", data: `{"type": "incremental"}`, want: signalCommand{typ: SignalStopSnapshot}},
		{name: "stop all, no data", typ: "stop-snapshot", data: ``, want: signalCommand{typ: SignalStopSnapshot}},
		{name: "stop some", typ: "stop-snapshot", data: `{"data-collections": ["public.orders"]}`,
			want: signalCommand{typ: SignalStopSnapshot, tables: []string{"public.orders"}}},
		{name: "log", typ: "log", data: `{"message": "hi"}`, want: signalCommand{typ: SignalLog, message: "hi"}},
		{name: "unknown type", typ: "pause-snapshot", data: `{}`, err: `unknown signal type "pause-snapshot"`},
		{name: "not JSON", typ: "execute-snapshot", data: `data-collections`, err: "signal data is not"},
		{name: "unknown field", typ: "execute-snapshot", data: `{"data-collection": ["public.orders"]}`, err: `unknown field "data-collection"`},
		{name: "no tables", typ: "execute-snapshot", data: `{"type": "incremental"}`, err: "names no data-collections"},
		{name: "blocking", typ: "execute-snapshot", data: `{"data-collections": ["public.orders"], "type": "blocking"}`, err: "only incremental snapshots"},
		{name: "bad name", typ: "execute-snapshot", data: `{"data-collections": ["public.Orders; drop"]}`, err: "data-collection"},
		{name: "condition of another table", typ: "execute-snapshot",
			data: `{"data-collections": ["public.orders"], "additional-conditions": [{"data-collection": "public.items", "filter": "true"}]}`,
			err:  "not among its data-collections"},
		{name: "condition without filter", typ: "execute-snapshot",
			data: `{"data-collections": ["public.orders"], "additional-conditions": [{"data-collection": "public.orders"}]}`, err: "has no filter"},
		{name: "conditions to stop", typ: "stop-snapshot",
			data: `{"data-collections": ["public.orders"], "additional-conditions": [{"data-collection": "public.orders", "filter": "true"}]}`,
			err:  "belong to execute-snapshot"},
		{name: "log without message", typ: "log", data: `{}`, err: "log signal data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSignal(tc.typ, tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestSignalsChangeThePlan: execute-snapshot queues captured tables once,
// with their filters; stop-snapshot ends some or all; a signal PostgreSQL
// sends again after a restart is not acted on twice.
func TestSignalsChangeThePlan(t *testing.T) {
	k := newFakeKafka(t)
	c := &Capture{cfg: Config{Slot: "s"}, tables: []string{"public.items", "public.orders", "sales.orders"},
		log: slog.New(slog.DiscardHandler), metrics: newMetrics(nil, "s"), incr: &incremental{}}
	c.pub = k.publisher(100, time.Hour, Checkpoint{})
	plan := func() []string {
		var out []string
		if st := c.pub.incremental; st != nil {
			for _, t := range st.Tables {
				out = append(out, t.Table+"|"+t.Filter)
			}
		}
		return out
	}
	signal := func(lsn change.LSN, typ, data string) {
		t.Helper()
		if err := c.applySignal(signalOutput{Position: change.Position{CommitLSN: lsn, Index: 1}, ID: fmt.Sprint(lsn), Type: typ, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	signal(10, "execute-snapshot", `{"data-collections": ["*.orders", "public.nothing"], "additional-conditions": [{"data-collection": "sales.orders", "filter": "id > 5"}]}`)
	signal(20, "execute-snapshot", `{"data-collections": ["public.orders", "public.items"]}`)
	if got, want := plan(), []string{"public.orders|", "sales.orders|id > 5", "public.items|"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	signal(20, "stop-snapshot", `{}`) // sent again: ignored
	signal(30, "stop-snapshot", `{"data-collections": ["sales.*"]}`)
	if got, want := plan(), []string{"public.orders|", "public.items|"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after stopping sales.*: plan %v, want %v", got, want)
	}
	signal(40, "stop-snapshot", `{"type": "incremental"}`)
	if c.pub.incremental != nil || *c.pub.lastSignal != (change.Position{CommitLSN: 40, Index: 1}) {
		t.Fatalf("after stopping all: %+v, last signal %v", c.pub.incremental, c.pub.lastSignal)
	}
	if p := c.IncrementalSnapshots(); len(p) != 3 || !p[0].Stopped || p[0].Table != "sales.orders" {
		t.Errorf("IncrementalSnapshots() = %+v, want the three stopped", p)
	}
	// Every signal acted on opened a Kafka transaction, so that the next
	// commit records the state before the slot moves past the signal.
	if !c.pub.open {
		t.Error("no transaction open for the checkpoint")
	}
}

// TestChunkCommittedWhole: the records of an incremental snapshot chunk,
// more than a Kafka transaction takes, are committed in one transaction
// with the checkpoint that records the chunk; a state change without
// records commits a checkpoint too.
func TestChunkCommittedWhole(t *testing.T) {
	ctx := context.Background()
	k := newFakeKafka(t)
	p := k.publisher(3, time.Hour, Checkpoint{})
	produce(t, p, pos(100, 1), testTopic, "before")
	var recs []serde.Encoded
	for i := range 5 {
		recs = append(recs, serde.Encoded{Topic: testTopic, Key: []byte("k"), Value: []byte(fmt.Sprintf("read %d", i))})
	}
	p.incremental = &IncrementalState{Tables: []IncrementalTable{{Table: "public.t", After: []string{"5"}, Rows: 5}}}
	if err := p.produceChanges(ctx, pos(200, 0), recs, len(recs)); err != nil {
		t.Fatal(err)
	}
	if p.open {
		t.Fatal("the transaction of the chunk is still open")
	}
	ckpts := k.checkpoints(pos(200, 0))
	if len(ckpts) != 1 || ckpts[0].Incremental == nil || ckpts[0].Incremental.Tables[0].After[0] != "5" {
		t.Fatalf("checkpoints %+v, want one, with the chunk", ckpts)
	}
	p.incremental = nil
	p.lastSignal = &change.Position{CommitLSN: 300, Index: 1}
	p.last = pos(300, 0)
	if err := p.stateChanged(); err != nil {
		t.Fatal(err)
	}
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	ckpts = k.checkpoints(pos(300, 0))
	if last := ckpts[len(ckpts)-1]; last.Incremental != nil || last.LastSignal == nil {
		t.Fatalf("last checkpoint %+v, want the state without records", last)
	}
	produce(t, p, pos(400, 1), testTopic, "end")
	if err := p.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.committed(testTopic, "end"); len(got) != 6 {
		t.Errorf("committed %v, want the record before and the 5 reads", got)
	}
}

func TestSlotCommands(t *testing.T) {
	if got, want := createSlotSQL("cdc", true), `CREATE_REPLICATION_SLOT "cdc" LOGICAL pgoutput (SNAPSHOT 'export', FAILOVER true)`; got != want {
		t.Errorf("createSlotSQL = %s, want %s", got, want)
	}
	if got := createSlotSQL("cdc", false); strings.Contains(got, "FAILOVER") {
		t.Errorf("createSlotSQL without failover = %s", got)
	}
	for version, want := range map[int]string{150018: "wal_status = 'lost'", 160004: "conflicting", 170002: "invalidation_reason"} {
		q := slotQuery(version)
		if !strings.Contains(q, want) || strings.Contains(q, "failover") != (version >= failoverVersion) {
			t.Errorf("slotQuery(%d) = %s, want %s and failover only from 17", version, q, want)
		}
	}
}
