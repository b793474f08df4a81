package capture

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgproto3"
)

var record = flag.Bool("record", false, "record the pgoutput streams of testdata/pgoutput anew from the PostgreSQL of scripts/services (then run with -update to rewrite the golden files)")

// recording is a pgoutput stream recorded from PostgreSQL by
// TestRecordPgoutput: testdata/pgoutput/<name>.json.
type recording struct {
	// Setup and Statements are the SQL the stream was recorded from: Setup
	// before the slot was created, then each statement in turn.
	Setup      []string `json:"setup"`
	Statements []string `json:"statements"`
	Database   string   `json:"database"`
	// Messages are the XLogData messages the slot sent, in order.
	Messages []recordedMessage `json:"messages"`
}

// recordedMessage is one XLogData message: where it starts and its pgoutput
// message, hex-encoded. Type names the message for readers. A Relation
// message comes with what capture's catalog lookup said of its columns when
// it arrived.
type recordedMessage struct {
	Type     string          `json:"type"`
	WALStart change.LSN      `json:"wal_start"`
	Data     string          `json:"data"`
	Columns  []catalogColumn `json:"columns,omitempty"`
}

// scenario is a script recorded into testdata/pgoutput/<name>.json. Its
// tables are named golden_* and published; teardown drops what setup made.
type scenario struct {
	name       string
	tables     []string
	setup      []string
	statements []string
	teardown   []string
}

var scenarios = []scenario{
	{
		name:   "changes",
		tables: []string{"golden_orders", "golden_items", "golden_audit"},
		setup: []string{
			`CREATE TABLE golden_orders (id bigint PRIMARY KEY, customer_id integer NOT NULL,
				status text NOT NULL DEFAULT 'new', amount numeric(12,2) NOT NULL,
				created_at timestamptz NOT NULL DEFAULT now(), note text, secret text)`,
			`CREATE TABLE golden_items (order_id bigint, sku text, qty integer NOT NULL DEFAULT 1, PRIMARY KEY (order_id, sku))`,
			`CREATE TABLE golden_audit (id serial PRIMARY KEY, what text)`,
		},
		statements: []string{
			`INSERT INTO golden_orders VALUES (1, 7, 'new', 42.50, '2026-11-21 09:15:00.25+00', NULL, 's3cret')`,
			`BEGIN;
			INSERT INTO golden_orders VALUES (2, 8, 'new', 10.00, '2026-11-21 09:16:00+00', 'rush', NULL);
			INSERT INTO golden_items VALUES (2, 'a', 1), (2, 'b', 3);
			INSERT INTO golden_audit (what) VALUES ('order 2');
			COMMIT`,
			`UPDATE golden_orders SET status = 'paid', amount = 45.00 WHERE id = 1`,
			`ALTER TABLE golden_orders REPLICA IDENTITY FULL`,
			`UPDATE golden_orders SET note = 'gift' WHERE id = 1`,
			`UPDATE golden_orders SET id = 20 WHERE id = 2`,
			`UPDATE golden_items SET sku = 'c' WHERE order_id = 2 AND sku = 'a'`,
			`UPDATE golden_items SET qty = 5 WHERE order_id = 2 AND sku = 'b'`,
			`DELETE FROM golden_items WHERE order_id = 2`,
			`DELETE FROM golden_orders WHERE id = 1`,
			`TRUNCATE golden_audit`,
		},
		teardown: []string{`DROP TABLE IF EXISTS golden_orders, golden_items, golden_audit`},
	},
	{
		name:   "toast",
		tables: []string{"golden_docs"},
		setup: []string{
			`CREATE TABLE golden_docs (id int PRIMARY KEY, n int NOT NULL, doc text)`,
			`ALTER TABLE golden_docs ALTER COLUMN doc SET STORAGE EXTERNAL`, // TOAST without compression
		},
		statements: []string{
			`INSERT INTO golden_docs VALUES (1, 1, repeat('0123456789', 300))`,
			`UPDATE golden_docs SET n = 2 WHERE id = 1`, // doc unchanged: not sent
			`ALTER TABLE golden_docs REPLICA IDENTITY FULL`,
			`UPDATE golden_docs SET n = 3 WHERE id = 1`, // with a full before image it is known
		},
		teardown: []string{`DROP TABLE IF EXISTS golden_docs`},
	},
	{
		name:   "messages",
		tables: []string{"golden_outbox"},
		setup:  []string{`CREATE TABLE golden_outbox (id int PRIMARY KEY)`},
		statements: []string{
			`BEGIN;
			INSERT INTO golden_outbox VALUES (1);
			SELECT pg_logical_emit_message(true, 'outbox', 'golden: order 1 placed');
			COMMIT`,
			`SELECT pg_logical_emit_message(false, 'audit', 'golden: standalone')`,
			`SELECT pg_logical_emit_message(true, 'cdcflow_heartbeat', 'golden: heartbeat')`,
			`SELECT pg_logical_emit_message(true, 'other', 'golden: published unless prefixes are selected')`,
			`INSERT INTO golden_outbox VALUES (2)`,
		},
		teardown: []string{`DROP TABLE IF EXISTS golden_outbox`},
	},
	{
		name:   "schema_change",
		tables: []string{"golden_evolve"},
		setup:  []string{`CREATE TABLE golden_evolve (id int PRIMARY KEY, name text NOT NULL)`},
		statements: []string{
			`INSERT INTO golden_evolve VALUES (1, 'a')`,
			`ALTER TABLE golden_evolve ADD COLUMN score integer DEFAULT 7`,
			`INSERT INTO golden_evolve VALUES (2, 'b', 9)`,
			`UPDATE golden_evolve SET score = 10 WHERE id = 1`,
			`ALTER TABLE golden_evolve DROP COLUMN name`,
			`INSERT INTO golden_evolve VALUES (3, 11)`,
		},
		teardown: []string{`DROP TABLE IF EXISTS golden_evolve`},
	},
	{
		name:   "types",
		tables: []string{"golden_types"},
		setup: []string{
			`CREATE EXTENSION IF NOT EXISTS hstore`,
			`CREATE TYPE golden_mood AS ENUM ('sad', 'ok', 'happy')`,
			`CREATE DOMAIN golden_price AS numeric(10,2)`,
			`CREATE TABLE golden_types (id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision,
				n numeric, n_nan numeric, m money, b boolean, bin bytea, d date, ts timestamp, tstz timestamptz,
				t time, ttz timetz, iv interval, u uuid, j jsonb, h hstore, mood golden_mood, price golden_price,
				tags text[], moods golden_mood[], inf timestamptz, c char(5), v varchar(10))`,
		},
		statements: []string{
			`INSERT INTO golden_types VALUES (1, -32768, 9223372036854775807, 1.5, -2.25e-10,
				1234.5678, 'NaN', '-$1,234.56', true, '\x00ff', '2026-11-21', '2026-11-21 10:30:00.123456',
				'2026-11-21 10:30:00.5+02', '04:05:06.789', '04:05:06+02', '1 year 2 mons 3 days 04:05:06',
				'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', 'k => v, n => NULL', 'happy', 12.5,
				'{x,"y z",NULL}', '{sad,ok}', 'infinity', 'ab', 'héllo')`,
			`INSERT INTO golden_types (id) VALUES (2)`,
		},
		teardown: []string{`DROP TABLE IF EXISTS golden_types`, `DROP DOMAIN IF EXISTS golden_price`, `DROP TYPE IF EXISTS golden_mood`},
	},
	{
		name:   "origin",
		tables: []string{"golden_replicated"},
		setup: []string{
			`CREATE TABLE golden_replicated (id int PRIMARY KEY)`,
			`SELECT pg_replication_origin_create('golden_origin')`,
		},
		statements: []string{
			`INSERT INTO golden_replicated VALUES (1)`,
			`SELECT pg_replication_origin_session_setup('golden_origin')`,
			`BEGIN;
			SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2026-11-21 10:00:00+00');
			INSERT INTO golden_replicated VALUES (2);
			COMMIT`,
			`SELECT pg_replication_origin_session_reset()`,
			`INSERT INTO golden_replicated VALUES (3)`,
		},
		teardown: []string{
			`DROP TABLE IF EXISTS golden_replicated`,
			`SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = 'golden_origin'`,
		},
	},
}

// syncPrefix marks the logical decoding message the recorder writes after
// each statement and reads up to; it is not recorded.
const syncPrefix = "cdcflow_golden_sync"

// goldenContent starts the content of the scenarios' logical decoding
// messages. Messages are not published per table: the slot also sees what
// other sessions of the database write (heartbeats of captures running
// meanwhile), which the recorder leaves out.
const goldenContent = "golden:"

// TestRecordPgoutput records the scenarios' pgoutput streams from the
// PostgreSQL of scripts/services. With -record it writes them into
// testdata/pgoutput (go test ./capture -run 'TestRecordPgoutput|TestAssemblerGolden' -record -update);
// without, it checks that the checked-in recordings are still what this
// PostgreSQL sends: the same messages in the same order, the same catalog
// columns for each relation (positions, transaction ids and relation ids
// differ from run to run).
func TestRecordPgoutput(t *testing.T) {
	dsn := testenv.PGDSN(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := recordScenario(t, dsn, sc)
			path := filepath.Join("testdata", "pgoutput", sc.name+".json")
			if !*record {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var kept recording
				if err := json.Unmarshal(b, &kept); err != nil {
					t.Fatal(err)
				}
				if got, want := shapeOf(rec), shapeOf(kept); !slices.Equal(got, want) {
					t.Fatalf("PostgreSQL sends another stream than %s records (record it anew with -record):\ngot  %q\nwant %q", path, got, want)
				}
				return
			}
			b, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// shapeOf is what a recording shows whichever run made it: each message's
// type, and a relation's columns as the catalog described them. A Relation
// message that repeats what the stream already said is left out: pgoutput
// sends a relation again whenever its cache is invalidated, which other
// sessions' publication changes do.
func shapeOf(rec recording) []string {
	var shape []string
	seen := map[string]bool{}
	for _, m := range rec.Messages {
		s := m.Type
		for _, c := range m.Columns {
			s += fmt.Sprintf(" %s:%s:%v:%v", c.Name, c.Type, c.Key, c.Nullable)
		}
		if m.Type == "Relation" {
			if seen[s] {
				continue
			}
			seen[s] = true
		}
		shape = append(shape, s)
	}
	return shape
}

// recordScenario runs sc against the database dsn names, through a
// temporary slot and a publication of its own, and returns what the slot
// sent, with capture's catalog lookup for each Relation message done as
// capture does it: when the message arrives.
func recordScenario(t *testing.T, dsn string, sc scenario) recording {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	publication := "golden_" + sc.name
	teardown := append([]string{"DROP PUBLICATION IF EXISTS " + publication}, sc.teardown...)
	for _, sql := range teardown {
		exec(sql)
	}
	defer func() {
		for _, sql := range teardown {
			exec(sql)
		}
	}()
	for _, sql := range sc.setup {
		exec(sql)
	}
	exec(fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", publication, strings.Join(sc.tables, ", ")))

	repl, err := connectReplication(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(context.Background())
	slot, err := pglogrepl.CreateReplicationSlot(ctx, repl, publication, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		t.Fatal(err)
	}
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, repl, publication, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", publication), "messages 'true'"},
	}); err != nil {
		t.Fatal(err)
	}

	rec := recording{Setup: sc.setup, Statements: sc.statements}
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&rec.Database); err != nil {
		t.Fatal(err)
	}
	// The messages of the open transaction; kept unless it turns out to
	// hold nothing but other sessions' logical decoding messages.
	var txn []recordedMessage
	var keep bool
	for i, sql := range sc.statements {
		exec(sql)
		exec(fmt.Sprintf("SELECT pg_logical_emit_message(false, '%s', '%d')", syncPrefix, i))
		for synced := false; !synced; {
			raw, err := repl.ReceiveMessage(ctx)
			if err != nil {
				t.Fatalf("after statement %d: %v", i, err)
			}
			cd, ok := raw.(*pgproto3.CopyData)
			if !ok || cd.Data[0] != pglogrepl.XLogDataByteID {
				continue
			}
			xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				t.Fatal(err)
			}
			msg, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				t.Fatal(err)
			}
			m := recordedMessage{Type: msg.Type().String(), WALStart: change.LSN(xld.WALStart), Data: hex.EncodeToString(xld.WALData)}
			switch msg := msg.(type) {
			case *pglogrepl.LogicalDecodingMessage:
				synced = msg.Prefix == syncPrefix
				if !strings.HasPrefix(string(msg.Content), goldenContent) {
					continue // the sync message, or another session's
				}
			case *pglogrepl.RelationMessage:
				if m.Columns, err = relationColumns(ctx, conn, msg); err != nil {
					t.Fatal(err)
				}
			}
			switch msg.(type) {
			case *pglogrepl.BeginMessage:
				txn, keep = []recordedMessage{m}, false
			case *pglogrepl.CommitMessage:
				if keep {
					rec.Messages = append(rec.Messages, append(txn, m)...)
				}
				txn = nil
			default:
				if txn == nil { // outside a transaction
					rec.Messages = append(rec.Messages, m)
					continue
				}
				txn, keep = append(txn, m), true
			}
		}
	}
	return rec
}
