package serde

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/recorded"
)

// TestDecodeRecordedDebezium decodes every record Debezium's PostgreSQL,
// MariaDB and MongoDB connectors wrote, in each of the three forms, and
// compares what it reads with testdata/debezium/<source>.golden: Avro and
// JSON with schemas read the same rows, JSON without schemas reads what the
// JSON says; positions grow per key in the order the connector wrote the
// records; records that are not changes say why.
func TestDecodeRecordedDebezium(t *testing.T) {
	for _, source := range recorded.Sources {
		t.Run(source, func(t *testing.T) {
			reg := fakeRegistry(t)
			dec := NewDecoder(reg)
			recs, err := recorded.Load(source)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			for _, form := range recorded.Forms {
				fmt.Fprintf(&out, "# %s\n", form)
				last := map[string]change.Position{}
				for i, r := range recs {
					key, value, err := r.Bytes(context.Background(), reg, r.Topic, form)
					if err != nil {
						t.Fatal(err)
					}
					ev, k, err := dec.DecodeDebezium(context.Background(), key, value)
					switch {
					case err != nil:
						fmt.Fprintf(&out, "%s: error: %v\n", r.Topic, err)
						continue
					case ev == nil:
						fmt.Fprintf(&out, "%s: tombstone\n", r.Topic)
						continue
					}
					fmt.Fprintf(&out, "%s: %s %s %s key %s before %s after %s\n", r.Topic, ev.Op, ev.Position,
						ev.TableName(), renderRow(k), renderRow(ev.Before), renderRow(ev.After))
					id := r.Topic + renderRow(k)
					if p, ok := last[id]; ok && ev.Position.Compare(p) <= 0 {
						t.Errorf("%s record %d (%s): position %s is not after the key's previous change's, %s", form, i+1, id, ev.Position, p)
					}
					last[id] = ev.Position
				}
			}
			golden := filepath.Join("testdata", "debezium", source+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("decoded records differ from %s (go test -update rewrites it):\n%s", golden, out.String())
			}
			// Avro and JSON with schemas read the same rows, and fail on the
			// same records (their errors name what each form says).
			errLine := regexp.MustCompile(`(?m): error: .*$`)
			sections := strings.Split(errLine.ReplaceAllString(out.String(), ": error"), "# ")
			if avro, js := strings.TrimPrefix(sections[1], "avro\n"), strings.TrimPrefix(sections[2], "json\n"); avro != js {
				t.Errorf("Avro and JSON with schemas read differently:\n%s\n%s", avro, js)
			}
		})
	}
}

// renderRow writes a row with its columns sorted and each value's Go type.
func renderRow(r change.Row) string {
	if r == nil {
		return "null"
	}
	cols := slices.Sorted(func(yield func(string) bool) {
		for k := range r {
			if !yield(k) {
				return
			}
		}
	})
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c + "=" + renderValue(r[c])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case *big.Rat:
		return "rat:" + x.RatString()
	case time.Time:
		return "time:" + x.Format(time.RFC3339Nano)
	case []byte:
		return "bytes:" + base64.StdEncoding.EncodeToString(x)
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprintf("%T:%v", v, v)
}
