package capture_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestSchemaChangesWhileStreaming adds, drops and widens columns while
// capture streams: each table version registers a new schema version under
// the registry's BACKWARD compatibility and changes keep flowing; a change
// the registry rejects (a new NOT NULL column, which old records cannot
// fill) goes to the dead-letter topic, and capture goes on.
func TestSchemaChangesWhileStreaming(t *testing.T) {
	f := newFixture(t)
	f.exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, qty int NOT NULL)", f.name))
	topic := serde.Topic(f.prefix, "public", f.name)
	ctx := context.Background()
	if res := f.reg.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, topic+"-value"); res[0].Err != nil {
		t.Fatalf("set compatibility: %v", res[0].Err)
	}
	c := f.startCapture(capture.Config{})
	f.exec("INSERT INTO " + f.name + " VALUES (1, 10)")
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN note text")
	f.exec("INSERT INTO " + f.name + " VALUES (2, 20, 'added')")
	f.exec("ALTER TABLE " + f.name + " ALTER COLUMN qty TYPE bigint")
	f.exec("INSERT INTO " + f.name + " VALUES (3, 30, 'widened')")
	f.exec("ALTER TABLE " + f.name + " DROP COLUMN note")
	f.exec("INSERT INTO " + f.name + " VALUES (4, 40)")
	f.exec("ALTER TABLE " + f.name + " ADD COLUMN region text NOT NULL DEFAULT 'eu'")
	f.exec("INSERT INTO " + f.name + " VALUES (5, 50, 'us')")

	recs := f.consume(topic, 4)
	want := []change.Row{
		{"id": int32(1), "qty": int32(10)},
		{"id": int32(2), "qty": int32(20), "note": "added"},
		{"id": int32(3), "qty": int64(30), "note": "widened"},
		{"id": int32(4), "qty": int64(40)},
	}
	for i, w := range want {
		if got := recs[i].event.After; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("record %d: after = %v, want %v", i, got, w)
		}
	}
	versions, err := f.reg.SubjectVersions(ctx, topic+"-value")
	if err != nil || len(versions) != 4 {
		t.Errorf("subject %s-value has versions %v (%v), want 4", topic, versions, err)
	}

	dead := f.rawRecords(f.prefix+".dlq", 1)
	if len(dead) != 1 || !strings.Contains(string(dead[0].Value), `"region":"us"`) {
		t.Fatalf("dead letters %v, want the row with the rejected schema", dead)
	}
	for _, h := range dead[0].Headers {
		if h.Key == "cdcflow.error" && !strings.Contains(string(h.Value), "schema rejected by the registry") {
			t.Errorf("error header %q does not say the registry rejected the schema", h.Value)
		}
	}
	if st := c.Stats(); st.DeadLettered != 1 {
		t.Errorf("stats %+v", st)
	}
}
