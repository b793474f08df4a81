package capture

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pglogrepl"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/assembler from the recorded streams")

// assemblerNow is the clock of the assembler in golden tests: the
// envelopes' ts_ms.
var assemblerNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// assemblerCase replays a recorded stream (testdata/pgoutput/<recording>.json)
// through an assembler and holds its outputs to testdata/assembler/<name>.json.
type assemblerCase struct {
	name      string
	recording string
	tables    []string      // captured, schema.table
	config    func(*Config) // changes to the default Config
	// columns edits the catalog's description of a relation's columns.
	columns func(rel string, cols []catalogColumn)
	// resume returns the checkpoint to resume after, given the outputs of the
	// stream replayed from no checkpoint.
	resume func(t *testing.T, outs []output) Checkpoint
}

var assemblerCases = []assemblerCase{
	{name: "changes", recording: "changes", tables: []string{"public.golden_orders", "public.golden_items"}},
	{
		// PostgreSQL sends again what Kafka holds after a restart: up to the
		// checkpoint, in the middle of the multi-table transaction, every
		// change is skipped, and no BEGIN record is published again.
		name: "changes_resumed", recording: "changes", tables: []string{"public.golden_orders", "public.golden_items"},
		resume: func(t *testing.T, outs []output) Checkpoint {
			return Checkpoint{Position: publishedPositions(outs)[2]}
		},
	},
	{
		// golden_orders' snapshot was taken at the commit of the third
		// transaction: its changes committed before are in the snapshot.
		name: "changes_snapshot", recording: "changes", tables: []string{"public.golden_orders", "public.golden_items"},
		resume: func(t *testing.T, outs []output) Checkpoint {
			var commits []change.LSN
			for _, o := range outs {
				if e, ok := o.(eventOutput); ok && !slices.Contains(commits, e.Event.Position.CommitLSN) {
					commits = append(commits, e.Event.Position.CommitLSN)
				}
			}
			return Checkpoint{Snapshot: &SnapshotState{Tables: map[string]change.LSN{"public.golden_orders": commits[2]}}}
		},
	},
	{
		name: "changes_columns", recording: "changes", tables: []string{"public.golden_orders"},
		config: func(c *Config) {
			c.ExcludeColumns, c.MaskColumns, c.MaskSalt = []string{"public.golden_orders.note"}, []string{"public.golden_*.secret"}, "pepper"
			c.NoTransactionTopic = true
		},
	},
	{
		// skipped.operations none: TRUNCATE golden_audit is an op "t"
		// event, the last of its transaction.
		name: "changes_truncate", recording: "changes", tables: []string{"public.golden_orders", "public.golden_items", "public.golden_audit"},
		config: func(c *Config) { c.SkippedOperations = []change.Op{} },
	},
	{
		// skipped.operations c,d: inserts and deletes are neither published
		// nor counted in the transactions; an update of the key, a delete
		// and a create, leaves the create only.
		name: "changes_skipped", recording: "changes", tables: []string{"public.golden_orders", "public.golden_items", "public.golden_audit"},
		config: func(c *Config) { c.SkippedOperations = []change.Op{change.OpCreate, change.OpDelete} },
	},
	{name: "toast", recording: "toast", tables: []string{"public.golden_docs"}},
	{name: "messages", recording: "messages", tables: []string{"public.golden_outbox"}},
	{
		name: "messages_selected", recording: "messages", tables: []string{"public.golden_outbox"},
		config: func(c *Config) { c.MessagePrefixes = []string{"outbox"} },
	},
	{name: "schema_change", recording: "schema_change", tables: []string{"public.golden_evolve"}},
	{name: "types", recording: "types", tables: []string{"public.golden_types"}},
	{
		// A value capture cannot decode goes to the dead-letter topic in
		// PostgreSQL's text form, in its place among the transaction's
		// changes; here the catalog claims a numeric column is int4.
		name: "types_undecodable", recording: "types", tables: []string{"public.golden_types"},
		columns: func(rel string, cols []catalogColumn) {
			for i := range cols {
				if cols[i].Name == "n" {
					cols[i].Type, cols[i].OID = "int4", 23
				}
			}
		},
	},
	{name: "origin", recording: "origin", tables: []string{"public.golden_replicated"}},
}

// TestAssemblerGolden replays recorded pgoutput streams through the
// assembler and compares what it outputs with golden files; -update
// rewrites them.
func TestAssemblerGolden(t *testing.T) {
	for _, tc := range assemblerCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := readRecording(t, tc.recording)
			var ckpt Checkpoint
			if tc.resume != nil {
				outs, err := replay(rec, tc, Checkpoint{})
				if err != nil {
					t.Fatal(err)
				}
				ckpt = tc.resume(t, outs)
			}
			outs, err := replay(rec, tc, ckpt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(map[string]any{"recording": tc.recording, "checkpoint": ckpt, "outputs": goldenOutputs(outs)}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "assembler", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./capture -run TestAssemblerGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("outputs differ from %s (run with -update to accept them, then review the diff):\n%s", path, firstDifference(got, want))
			}
		})
	}
}

// TestAssemblerStopsOnStreamsItCannotFollow: a change of a relation never
// described, or outside a transaction, is an error, not a guess.
func TestAssemblerStopsOnStreamsItCannotFollow(t *testing.T) {
	rec := readRecording(t, "changes")
	tc := assemblerCase{tables: []string{"public.golden_orders"}}
	for _, c := range []struct {
		name string
		drop string // the message type left out
		want string
	}{
		{"no relation", "Relation", "that pgoutput never described"},
		{"no begin", "Begin", "outside a transaction"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rec
			r.Messages = slices.DeleteFunc(slices.Clone(rec.Messages), func(m recordedMessage) bool { return m.Type == c.drop })
			_, err := replay(r, tc, Checkpoint{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("replay without %s messages: %v, want an error saying %q", c.drop, err, c.want)
			}
		})
	}
}

func readRecording(t *testing.T, name string) recording {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pgoutput", name+".json"))
	if err != nil {
		t.Fatalf("%v (record it with go test ./capture -run TestRecordPgoutput -record)", err)
	}
	var rec recording
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// replay feeds rec to a new assembler as the replication loop does, and
// returns every output.
func replay(rec recording, tc assemblerCase, ckpt Checkpoint) ([]output, error) {
	cfg := Config{DSN: "postgres://golden", Brokers: []string{"golden:9092"}, Tables: tc.tables, TopicPrefix: "golden"}
	if tc.config != nil {
		tc.config(&cfg)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := newAssembler(&cfg, rec.Database, tc.tables, ckpt, func() time.Time { return assemblerNow })
	var outs []output
	for _, m := range rec.Messages {
		data, err := hex.DecodeString(m.Data)
		if err != nil {
			return nil, err
		}
		msg, err := pglogrepl.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("parse message at %s: %w", m.WALStart, err)
		}
		if rel, ok := msg.(*pglogrepl.RelationMessage); ok {
			cols := slices.Clone(m.Columns)
			if tc.columns != nil {
				tc.columns(rel.Namespace+"."+rel.RelationName, cols)
			}
			if err := a.relation(rel, cols); err != nil {
				return nil, err
			}
			continue
		}
		o, err := a.message(m.WALStart, msg)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o...)
	}
	return outs, nil
}

// publishedPositions are the positions of the changes, messages and dead
// letters among outs.
func publishedPositions(outs []output) []change.Position {
	var ps []change.Position
	for _, o := range outs {
		switch o := o.(type) {
		case eventOutput:
			ps = append(ps, o.Event.Position)
		case messageOutput:
			ps = append(ps, o.Message.Position)
		case deadLetterOutput:
			ps = append(ps, o.Position)
		}
	}
	return ps
}

// goldenOutput is an output as a golden file shows it. Row values other
// than strings show their Go type: "int32(7)".
type goldenOutput struct {
	Kind        string                   `json:"kind"`
	Position    *change.Position         `json:"position,omitempty"`
	LSN         *change.LSN              `json:"lsn,omitempty"`
	Table       string                   `json:"table,omitempty"`
	Op          string                   `json:"op,omitempty"`
	Before      map[string]any           `json:"before,omitempty"`
	After       map[string]any           `json:"after,omitempty"`
	Prefix      string                   `json:"prefix,omitempty"`
	Content     *string                  `json:"content,omitempty"`
	Source      *change.Source           `json:"source,omitempty"`
	Transaction *change.Transaction      `json:"transaction,omitempty"`
	TsMs        int64                    `json:"ts_ms,omitempty"`
	Record      *serde.TransactionRecord `json:"record,omitempty"`
	Raw         *rawChange               `json:"raw,omitempty"`
	Cause       string                   `json:"cause,omitempty"`
	CommitTime  *time.Time               `json:"commit_time,omitempty"`
}

func goldenOutputs(outs []output) []goldenOutput {
	g := make([]goldenOutput, 0, len(outs))
	for _, o := range outs {
		switch o := o.(type) {
		case eventOutput:
			ev := o.Event
			g = append(g, goldenOutput{Kind: "event", Position: &ev.Position, LSN: &o.LSN, Table: o.Table.String(), Op: ev.Op.String(),
				Before: goldenRow(ev.Before), After: goldenRow(ev.After), Source: &ev.Source, Transaction: ev.Transaction, TsMs: ev.TsMs})
		case transactionOutput:
			g = append(g, goldenOutput{Kind: "transaction", Position: &o.Position, Record: &o.Record})
		case messageOutput:
			m := o.Message
			content := string(m.Content)
			g = append(g, goldenOutput{Kind: "message", Position: &m.Position, Prefix: m.Prefix, Content: &content,
				Source: &m.Source, Transaction: m.Transaction, TsMs: m.TsMs})
		case deadLetterOutput:
			raw := o.Raw.text()
			g = append(g, goldenOutput{Kind: "dead_letter", Position: &o.Position, LSN: &o.LSN, Table: o.Table.String(), Raw: &raw, Cause: o.Cause.Error()})
		case skippedOutput:
			g = append(g, goldenOutput{Kind: "skipped", Position: &o.Position})
		case commitOutput:
			out := goldenOutput{Kind: "commit", LSN: &o.End}
			if !o.CommitTime.IsZero() {
				out.CommitTime = &o.CommitTime
			}
			g = append(g, out)
		case lastCommitOutput:
			g = append(g, goldenOutput{Kind: "last_commit", LSN: &o.LSN})
		default:
			panic(fmt.Sprintf("no golden form for %T", o))
		}
	}
	return g
}

func goldenRow(r change.Row) map[string]any {
	if r == nil {
		return nil
	}
	out := make(map[string]any, len(r))
	for k, v := range r {
		out[k] = goldenValue(v)
	}
	return out
}

// goldenValue shows v with its Go type, but a string as itself (a long one
// by its length and start).
func goldenValue(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if len(v) > 80 {
			return fmt.Sprintf("%s... (%d bytes)", v[:40], len(v))
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = goldenValue(e)
		}
		return out
	case []byte:
		return fmt.Sprintf("[]byte(%x)", v)
	case *big.Rat:
		return fmt.Sprintf("*big.Rat(%s)", v.RatString())
	case time.Time:
		return fmt.Sprintf("time.Time(%s)", v.Format(time.RFC3339Nano))
	case change.Unavailable:
		return "change.Unavailable"
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// firstDifference shows the lines around the first line where got and want
// differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}
