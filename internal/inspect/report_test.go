package inspect

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Threshold
		err  bool
	}{
		{"10000", Threshold{Records: 10000}, false},
		{"30s", Threshold{Age: 30 * time.Second}, false},
		{" 2m ", Threshold{Age: 2 * time.Minute}, false},
		{"0", Threshold{}, true},
		{"-5", Threshold{}, true},
		{"10x", Threshold{}, true},
		{"", Threshold{}, true},
	} {
		t.Run(tc.text, func(t *testing.T) {
			var got Threshold
			err := got.UnmarshalText([]byte(tc.text))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
			if err == nil {
				back, _ := got.MarshalText()
				var again Threshold
				if again.UnmarshalText(back); again != got {
					t.Fatalf("%q round-trips to %+v", back, again)
				}
			}
		})
	}
}

// report is a report with something in every section: an inactive slot,
// a checkpoint, groups with and without lag (one counted by offsets), a
// topic that does not exist, dead letters.
func report() *Report {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	behind := int64(120)
	r := &Report{At: at,
		Slot: &Slot{Name: "cdcflow", Exists: true, Active: true, ActivePID: 4242, Confirmed: 0x3907F4F8, Restart: 0x39000000,
			ServerWAL: 0x3907F600, PendingBytes: 264, RetainedBytes: 521_720, WALStatus: "reserved", BehindMillis: &behind},
		Checkpoint: &CheckpointStatus{Topic: "cdcflow.checkpoints", Key: "cdcflow/cdcflow", Found: true,
			Checkpoint: capture.Checkpoint{Position: change.Position{CommitLSN: 0x39095660, Index: 1}, Confirm: 0x39095700,
				Snapshot: &capture.SnapshotState{Tables: map[string]change.LSN{"public.orders": 1, "public.customers": 1}}}},
		Topics:      []Topic{{Name: "cdcflow.public.orders", Partitions: 3, Records: 1234, Exact: true}, {Name: "cdcflow.public.gone", Missing: true, Exact: true}},
		DeadLetters: []Topic{{Name: "order-metrics.dlq", Partitions: 1, Records: 2, Exact: true}},
	}
	r.AddGroup("order-metrics", GroupLag{Group: Group{Name: "order-metrics", State: "Stable", Members: []string{"goka@10.0.0.7"}}, Lag: Lag{Exact: true}})
	r.AddGroup("order-summaries", GroupLag{Group: Group{Name: "order-summaries-summary", State: "Empty"},
		Lag: Lag{Records: 350_000, Oldest: at.Add(-90 * time.Second)},
		Topics: []TopicLag{{Topic: "cdcflow.public.orders", Lag: Lag{Records: 350_000, Oldest: at.Add(-90 * time.Second)}},
			{Topic: "order-summaries-summary-loop", Missing: true, Lag: Lag{Exact: true}}}})
	return r
}

// TestReportText holds the text of a report, healthy and not, to the
// golden files testdata/report_*.txt (go test -update rewrites them).
func TestReportText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits []Threshold
		slot   func(*Slot)
	}{
		{"healthy", nil, func(*Slot) {}},
		{"unhealthy", []Threshold{{Records: 1000}, {Age: time.Minute}}, func(s *Slot) { s.Active, s.ActivePID, s.BehindMillis = false, 0, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report()
			tc.slot(r.Slot)
			r.Check(tc.limits)
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "report_"+tc.name+".txt")
			if *update {
				os.WriteFile(golden, b.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("report:\n%s\nwant (%s):\n%s", b.String(), golden, want)
			}
		})
	}
}
