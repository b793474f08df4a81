package pgsink_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors/pgsink"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/jackc/pgx/v5/pgxpool"
)

type item struct {
	ID      int64
	Name    string
	Price   *big.Rat
	At      time.Time
	Tags    []any
	Note    *string
	Payload []byte
}

// newSchema connects to the test PostgreSQL and creates a schema of the
// test's own, dropped at the end.
func newSchema(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	testenv.Integration(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PGDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("pgsink_%d", rand.IntN(1_000_000_000))
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		pool.Close()
	})
	return pool, schema
}

func itemNode(target string) *engine.PostgresTable {
	table := topologies.TableOf[item]("shop", "public", "items")
	return topologies.Postgres(table, target, func(i item) item { return i }).Engine().(*engine.PostgresTable)
}

func at(lsn uint64) change.Position { return change.Position{CommitLSN: change.LSN(lsn), Index: 1} }

func upsert(t *testing.T, node *engine.PostgresTable, i item, pos change.Position) pgsink.Write {
	t.Helper()
	row, err := topologies.TableOf[item]("shop", "public", "items").Row(i)
	if err != nil {
		t.Fatal(err)
	}
	w, err := node.Change(&change.Event{Op: change.OpUpdate, After: row, Position: pos})
	if err != nil {
		t.Fatal(err)
	}
	return pgsink.Write{Node: node, PostgresWrite: w}
}

func remove(t *testing.T, node *engine.PostgresTable, id int64, pos change.Position) pgsink.Write {
	t.Helper()
	w, err := node.Change(&change.Event{Op: change.OpDelete, Before: change.Row{"id": id}, Position: pos,
		Source: change.Source{TsMs: time.Now().UnixMilli()}})
	if err != nil {
		t.Fatal(err)
	}
	return pgsink.Write{Node: node, PostgresWrite: w}
}

func applied(t *testing.T, w *pgsink.Writer, writes ...pgsink.Write) []bool {
	t.Helper()
	res, err := w.Apply(context.Background(), writes)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("write %d: %v", i, r.Err)
		}
		out[i] = r.Applied
	}
	return out
}

// rows reads the table as text, by id.
func rows(t *testing.T, pool *pgxpool.Pool, table string) map[int64]string {
	t.Helper()
	rs, err := pool.Query(context.Background(), "SELECT id, concat_ws('|', name, price, at, tags, note, payload, cdc_version, cdc_position) FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for rs.Next() {
		var id int64
		var s string
		if err := rs.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}
	return out
}

// TestWritesApplyOncePerVersion: upserts and deletes are guarded by
// versions in SQL; an older or equal write changes nothing; a delete leaves
// a tombstone that refuses an older upsert; a later insert brings the row
// back; one key written twice in a batch gets its last write.
func TestWritesApplyOncePerVersion(t *testing.T) {
	pool, schema := newSchema(t)
	w := pgsink.New(pool)
	node := itemNode(schema + ".items")
	day := time.Date(2026, 11, 21, 9, 30, 0, 123456000, time.UTC)
	note := "fragile"
	a1 := item{ID: 1, Name: "pen", Price: big.NewRat(105, 100), At: day, Tags: []any{"office"}, Note: &note, Payload: []byte{1, 2}}
	b1 := item{ID: 2, Name: "ink", Price: big.NewRat(499, 100), At: day}
	if got := applied(t, w, upsert(t, node, a1, at(100)), upsert(t, node, b1, at(100))); !reflect.DeepEqual(got, []bool{true, true}) {
		t.Fatalf("first writes applied %v", got)
	}
	want := map[int64]string{1: `pen|1.05|2026-11-21 09:30:00.123456+00|["office"]|fragile|\x0102|` + engine.PositionVersion(at(100)) + "|" + at(100).String()}
	if r := rows(t, pool, schema+".items"); r[1] != want[1] || len(r) != 2 {
		t.Fatalf("rows %v, want %v and item 2", r, want)
	}
	a2 := a1
	a2.Name = "fountain pen"
	got := applied(t, w,
		upsert(t, node, a1, at(100)), // redelivered alone: nothing
		upsert(t, node, b1, at(100)),
	)
	if !reflect.DeepEqual(got, []bool{false, false}) {
		t.Fatalf("redelivered writes applied %v", got)
	}
	got = applied(t, w,
		upsert(t, node, a2, at(200)),
		upsert(t, node, a1, at(150)), // older, after a newer one of the same key: not applied, as in sequence
		remove(t, node, 2, at(300)),
	)
	if !reflect.DeepEqual(got, []bool{true, false, true}) {
		t.Fatalf("applied %v", got)
	}
	r := rows(t, pool, schema+".items")
	if len(r) != 1 || !strings.HasPrefix(r[1], "fountain pen|") || !strings.HasSuffix(r[1], at(200).String()) {
		t.Fatalf("rows %v", r)
	}
	got = applied(t, w,
		upsert(t, node, a2, at(250)), // newer than row 1
		upsert(t, node, b1, at(250)), // older than item 2's delete: its tombstone refuses it
		remove(t, node, 2, at(300)),  // the same delete again
		remove(t, node, 1, at(240)),  // older than row 1's write before it
	)
	if !reflect.DeepEqual(got, []bool{true, false, false, false}) {
		t.Fatalf("applied %v", got)
	}
	if r = rows(t, pool, schema+".items"); len(r) != 1 || !strings.HasSuffix(r[1], at(250).String()) {
		t.Fatalf("rows %v", r)
	}
	if got := applied(t, w, upsert(t, node, b1, at(400))); !got[0] {
		t.Fatal("an insert after the delete was refused")
	}
	if r := rows(t, pool, schema+".items"); len(r) != 2 {
		t.Fatalf("rows %v: item 2 not back", r)
	}
	var dead int
	pool.QueryRow(context.Background(), "SELECT count(*) FROM "+schema+".items_cdc_deleted").Scan(&dead)
	if dead != 1 {
		t.Fatalf("%d tombstones, want 1", dead)
	}
}

// TestRejectedRowsAreSetApart: a row the table's constraint refuses fails
// alone; the rest of its batch is applied.
func TestRejectedRowsAreSetApart(t *testing.T) {
	pool, schema := newSchema(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+schema+".items (id bigint PRIMARY KEY, name varchar(8) NOT NULL, price numeric(6,2) CHECK (price >= 0))"); err != nil {
		t.Fatal(err)
	}
	w := pgsink.New(pool)
	node := itemNode(schema + ".items")
	res, err := w.Apply(ctx, []pgsink.Write{
		upsert(t, node, item{ID: 1, Name: "pen", Price: big.NewRat(1, 1)}, at(100)),
		upsert(t, node, item{ID: 2, Name: "ink", Price: big.NewRat(-1, 1)}, at(100)),        // the CHECK
		upsert(t, node, item{ID: 3, Name: "a very long name", Price: nil}, at(100)),         // varchar(8)
		upsert(t, node, item{ID: 4, Name: "desk", Price: big.NewRat(12345678, 1)}, at(100)), // numeric(6,2)
		upsert(t, node, item{ID: 5, Name: "clip", Price: big.NewRat(5, 100)}, at(100)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		bad := i == 1 || i == 2 || i == 3
		if bad != (r.Err != nil) || bad == r.Applied || bad && !pgsink.Permanent(r.Err) {
			t.Errorf("write %d: %+v", i, r)
		}
	}
	if r := rows(t, pool, schema+".items"); len(r) != 2 || r[1] == "" || r[5] == "" {
		t.Fatalf("rows %v", r)
	}
	// The columns the row type has and the table lacks were added.
	var n int
	pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'items' AND column_name IN ('at', 'tags', 'note', 'payload', 'cdc_version', 'cdc_position')", schema).Scan(&n)
	if n != 6 {
		t.Fatalf("%d of the missing columns added, want 6", n)
	}
}

type itemV2 struct {
	ID      int64
	Name    string
	Price   *big.Rat
	At      time.Time
	Tags    []any
	Note    *string
	Payload []byte
	Stock   int32 // new
}

// TestTableEvolves: a row type that gains a field adds its column.
func TestTableEvolves(t *testing.T) {
	pool, schema := newSchema(t)
	ctx := context.Background()
	w := pgsink.New(pool)
	applied(t, w, upsert(t, itemNode(schema+".items"), item{ID: 1, Name: "pen"}, at(100)))
	table := topologies.TableOf[itemV2]("shop", "public", "items")
	v2 := topologies.Postgres(table, schema+".items", func(i itemV2) itemV2 { return i }).Engine().(*engine.PostgresTable)
	w2 := pgsink.New(pool) // a new processor, with the new row type
	row, _ := table.Row(itemV2{ID: 2, Name: "ink", Stock: 7})
	wr, err := v2.Change(&change.Event{Op: change.OpCreate, After: row, Position: at(200)})
	if err != nil {
		t.Fatal(err)
	}
	applied(t, w2, pgsink.Write{Node: v2, PostgresWrite: wr})
	var stock *int32
	if err := pool.QueryRow(ctx, "SELECT stock FROM "+schema+".items WHERE id = 2").Scan(&stock); err != nil || stock == nil || *stock != 7 {
		t.Fatalf("stock of item 2: %v, %v", stock, err)
	}
	if err := pool.QueryRow(ctx, "SELECT stock FROM "+schema+".items WHERE id = 1").Scan(&stock); err != nil || stock != nil {
		t.Fatalf("stock of item 1: %v, %v", stock, err)
	}
}

// TestNoUniqueKeyIsRejected: a table created beforehand without a unique
// index on the key columns is refused with what to do.
func TestNoUniqueKeyIsRejected(t *testing.T) {
	pool, schema := newSchema(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+schema+".items (id bigint, name text)"); err != nil {
		t.Fatal(err)
	}
	err := pgsink.New(pool).Ensure(ctx, itemNode(schema+".items"))
	if !pgsink.Permanent(err) || !strings.Contains(err.Error(), "ADD PRIMARY KEY (id)") {
		t.Fatalf("Ensure: %v", err)
	}
}

// TestCompactDropsOldTombstones: tombstones older than the cut are deleted,
// after which an older write of the key brings the row back.
func TestCompactDropsOldTombstones(t *testing.T) {
	pool, schema := newSchema(t)
	ctx := context.Background()
	w := pgsink.New(pool)
	node := itemNode(schema + ".items")
	applied(t, w, upsert(t, node, item{ID: 1, Name: "pen"}, at(100)), remove(t, node, 1, at(200)))
	if n, err := w.Compact(ctx, node, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("compact an hour back: %d, %v", n, err)
	}
	if got := applied(t, w, upsert(t, node, item{ID: 1, Name: "pen"}, at(100))); got[0] {
		t.Fatal("the tombstone did not refuse an older write")
	}
	if n, err := w.Compact(ctx, node, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("compact: %d, %v", n, err)
	}
	if got := applied(t, w, upsert(t, node, item{ID: 1, Name: "pen"}, at(100))); !got[0] {
		t.Fatal("an older write after the tombstone was compacted was refused")
	}
}

// TestUnreachableIsNotPermanent: an error of a PostgreSQL that does not
// answer is one to retry.
func TestUnreachableIsNotPermanent(t *testing.T) {
	testenv.Integration(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pgsink.New(pool).Apply(ctx, []pgsink.Write{upsert(t, itemNode("items"), item{ID: 1}, at(1))})
	if err == nil || pgsink.Permanent(err) || errors.Is(err, pgsink.ErrRejected) {
		t.Fatalf("Apply against nothing: %v", err)
	}
}
