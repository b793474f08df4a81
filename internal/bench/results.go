package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/template"
	"time"
)

// Results are the figures of a run.
type Results struct {
	Machine  Machine        `json:"machine"`
	Sizes    Sizes          `json:"sizes"`
	Figures  []Figure       `json:"figures"`
	EndToEnd *EndToEnd      `json:"end_to_end,omitempty"`
	Memory   []MemoryFigure `json:"memory"`
	// Ran is how many scenarios ran.
	Ran int `json:"scenarios_run"`
	// Failed lists the scenarios that failed, with their errors.
	Failed []string `json:"failed,omitempty"`
	// Note is a paragraph BENCHMARKS.md says under the machine (e.g. that
	// other work ran on it).
	Note string `json:"note,omitempty"`

	oltpRate, processRate float64 // what the end-to-end rate is half of
}

// Machine is where and when the figures were measured.
type Machine struct {
	Date      time.Time `json:"date"`
	Cores     int       `json:"cores"`
	MemoryGiB float64   `json:"memory_gib"`
	CPU       string    `json:"cpu"`
	Go        string    `json:"go"`
	Postgres  string    `json:"postgres"`
	// Commit is the cdcflow commit measured (git describe).
	Commit string `json:"commit,omitempty"`
	// Load is the 1-minute load average when the run started and when it
	// ended: other work on the machine makes the figures pessimistic.
	Load [2]float64 `json:"load_average"`
}

// Figure is a throughput of cdcflow next to its baseline's.
type Figure struct {
	Scenario      string  `json:"scenario"`
	Unit          string  `json:"unit"`
	Value         float64 `json:"cdcflow"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Target        float64 `json:"target_ratio"` // Value/BaselineValue should reach it
	Detail        string  `json:"detail"`
}

// Ratio is Value/BaselineValue.
func (f Figure) Ratio() float64 { return f.Value / f.BaselineValue }

// Met reports whether the ratio reaches the target.
func (f Figure) Met() bool { return f.Ratio() >= f.Target }

// EndToEnd is the latency from a source commit to its metric in Redis.
type EndToEnd struct {
	Topology        string  `json:"topology"`
	TargetRate      float64 `json:"target_rate"` // half the measured maximum
	Rate            float64 `json:"rate"`        // commits/s reached
	Probes          int     `json:"probes"`
	P50ms           float64 `json:"p50_ms"`
	P99ms           float64 `json:"p99_ms"`
	ProcessorRSSMiB float64 `json:"processor_rss_mib"`
}

// MemoryFigure is a resident set size.
type MemoryFigure struct {
	What      string  `json:"what"`
	MiB       float64 `json:"mib"`
	TargetMiB float64 `json:"target_mib,omitempty"`
	BoundMiB  float64 `json:"bound_mib,omitempty"` // above it the run fails
	Detail    string  `json:"detail,omitempty"`
}

func newResults(s Sizes) *Results {
	return &Results{Machine: machine(), Sizes: s}
}

func (r *Results) add(f Figure) { r.Figures = append(r.Figures, f) }

func machine() Machine {
	m := Machine{Date: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), Go: runtime.Version(), Load: [2]float64{loadAverage()}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	return m
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	var l float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f", &l)
	}
	return l
}

// SetPostgres records the server version the run measured against.
func (r *Results) SetPostgres(version string) { r.Machine.Postgres = version }

// WriteJSON writes the results, indented, to path.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Markdown renders the results as BENCHMARKS.md.
func (r *Results) Markdown() ([]byte, error) {
	var buf bytes.Buffer
	err := markdown.Execute(&buf, r)
	return buf.Bytes(), err
}

// ReadJSON reads results WriteJSON wrote.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Commit is `git describe --always --dirty` of the working tree, or "".
func Commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// GoVersion is `go version`, or runtime.Version when go is not on PATH.
func GoVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

var markdown = template.Must(template.New("md").Funcs(template.FuncMap{
	"n":     func(f float64) string { return fmt.Sprintf("%.0f", f) },
	"ratio": func(f float64) string { return fmt.Sprintf("%.2f×", f) },
	"met": func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	},
	"under": func(v, target float64) string {
		if target == 0 {
			return ""
		}
		if v <= target {
			return fmt.Sprintf("≤ %.0f MiB: met", target)
		}
		return fmt.Sprintf("≤ %.0f MiB: **missed**", target)
	},
}).Parse(`# Benchmarks

cdcflow next to its baselines, every scenario measured in the same run by
` + "`scripts/bench --full`" + ` (written by tools/bench; the JSON of the same run is
BENCHMARKS.json). Targets are reported, not asserted, except capture's peak
RSS bound, which fails the run.

## Machine

- Date: {{.Machine.Date.Format "2006-01-02 15:04 UTC"}}{{with .Machine.Commit}}, commit {{.}}{{end}}
- CPU: {{.Machine.Cores}} cores, {{.Machine.CPU}}
- Memory: {{printf "%.1f" .Machine.MemoryGiB}} GiB
- Load average (1 min) when the run started and ended: {{index .Machine.Load 0}}, {{index .Machine.Load 1}}
- Go: {{.Machine.Go}}
- PostgreSQL: {{.Machine.Postgres}}; Kafka (KRaft, one broker), the schema registry and Redis from ` + "`scripts/services`" + `, on the same machine
{{- if .Note}}

{{.Note}}
{{- end}}

## Reproduce

` + "```" + `
scripts/bench --full     # these sizes; rewrites BENCHMARKS.md and BENCHMARKS.json
scripts/bench            # the CI smoke form: every scenario, small sizes
` + "```" + `

Sizes: bulk {{.Sizes.BulkInsert}}-row INSERT + {{.Sizes.BulkUpdate}}-row UPDATE; OLTP {{.Sizes.OLTP}} single-row
transactions from pgbench ({{.Sizes.OLTPClients}} clients); snapshot of {{.Sizes.Snapshot}} rows; processing of
{{.Sizes.Processing}} change records; end to end {{.Sizes.EndToEnd}}s of load; one {{.Sizes.LargeTx}}-row transaction for memory.

## Throughput

| scenario | cdcflow | baseline | baseline figure | ratio | target |
|---|---:|---|---:|---:|---|
{{- range .Figures}}
| {{.Scenario}} | {{n .Value}} {{.Unit}} | {{.Baseline}} | {{n .BaselineValue}} {{.Unit}} | {{ratio .Ratio}} | ≥ {{printf "%.1f" .Target}}×: {{met .Met}} |
{{- end}}

{{range .Figures}}- {{.Scenario}}: {{.Detail}}.
{{end}}
How each is measured: capture runs as the built binary (Avro, the schema
registry and Kafka transactions on) from its log's "capture streaming" to the
checkpoint that commits the load's last transaction; pg_recvlogical reads the
same WAL range (its slot created before the load too) with pgoutput
(proto_version 1) into /dev/null, from its start to its exit at the load's end
LSN. Neither reads while the load runs. The snapshot runs capture with
--snapshot-mode initial_only, from its "snapshot needed" log line to its exit. Processors run as child processes
from their first change handled to their last.

## End to end
{{with .EndToEnd}}
Source commit → metric visible in Redis, topology {{.Topology}}, at {{n .Rate}} commits/s
(half the measured maximum: {{n .TargetRate}}/s), {{.Probes}} probes:
**p50 {{printf "%.1f" .P50ms}} ms, p99 {{printf "%.1f" .P99ms}} ms**; processor RSS {{printf "%.0f" .ProcessorRSSMiB}} MiB.
The maximum is the lower of capture's OLTP rate and the topology's processing
rate, each measured alone; here PostgreSQL, capture and the processor share
the cores. A probe is a commit whose order has a customer of its own; it is
visible when the customer is in the top-customers ranking.
{{else}}
Not measured (the scenario failed).
{{end}}
## Memory

| what | MiB | target | detail |
|---|---:|---|---|
{{- range .Memory}}
| {{.What}} | {{printf "%.0f" .MiB}} | {{under .MiB .TargetMiB}} | {{.Detail}} |
{{- end}}
{{- if .Failed}}

## Failed scenarios
{{range .Failed}}
- {{.}}
{{- end}}
{{- end}}
`))
