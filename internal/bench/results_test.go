package bench

import (
	"strings"
	"testing"
)

// TestMarkdownReportsRatiosAndTargets renders results and checks that the
// ratios, the targets met and missed, the end-to-end percentiles, the memory
// figures and the failures are what BENCHMARKS.md says.
func TestMarkdownReportsRatiosAndTargets(t *testing.T) {
	r := newResults(Full)
	r.SetPostgres("15.18")
	r.Machine.Load = [2]float64{1.5, 6.25}
	r.Machine.Commit = "c636c37"
	r.add(Figure{Scenario: "capture, bulk", Unit: "changes/s", Value: 45_000, Baseline: "pg_recvlogical", BaselineValue: 100_000, Target: 0.9})
	r.add(Figure{Scenario: "snapshot", Unit: "rows/s", Value: 900, Baseline: "COPY", BaselineValue: 1000, Target: 0.8})
	r.EndToEnd = &EndToEnd{Topology: "metrics", TargetRate: 500, Rate: 498, Probes: 750, P50ms: 95.04, P99ms: 312.55}
	r.Memory = append(r.Memory, MemoryFigure{What: "capture peak RSS", MiB: 150, TargetMiB: 128, BoundMiB: 256})
	r.Failed = []string{"processing: the registry is down"}
	r.Note = "Measured while other work ran on the machine."
	b, err := r.Markdown()
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{
		"| capture, bulk | 45000 changes/s | pg_recvlogical | 100000 changes/s | 0.45× | ≥ 0.9×: **missed** |",
		"| snapshot | 900 rows/s | COPY | 1000 rows/s | 0.90× | ≥ 0.8×: met |",
		"**p50 95.0 ms, p99 312.6 ms**",
		"| capture peak RSS | 150 | ≤ 128 MiB: **missed** |",
		"- processing: the registry is down",
		"Measured while other work ran on the machine.",
		"PostgreSQL: 15.18",
		", commit c636c37",
		"when the run started and ended: 1.5, 6.25",
		"bulk 1000000-row INSERT + 500000-row UPDATE",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, md)
		}
	}
}
