// Package pgsink writes the rows of Postgres nodes to PostgreSQL tables, at
// most once per version: each row keeps the version of the write that set it
// (cdc_version), each deleted key a tombstone with the version of its delete
// (in <table>_cdc_deleted), and a write at or below what a key keeps is
// refused by the statement itself (INSERT ... ON CONFLICT DO UPDATE ... WHERE
// the kept version is lower), so that redelivered and replayed changes change
// nothing and an older change never overwrites a newer one.
//
// Writes go in batches: every write of a batch, whatever its table, is sent in
// one round trip and applied in one transaction, one statement per table and
// kind (upserts, deletes) over arrays of values.
package pgsink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Writer writes rows to the tables of Postgres nodes. It is safe for
// concurrent use.
type Writer struct {
	pool *pgxpool.Pool

	mu     sync.Mutex
	tables map[string]*table // by target, once ensured
}

// New returns a writer writing through pool.
func New(pool *pgxpool.Pool) *Writer {
	return &Writer{pool: pool, tables: map[string]*table{}}
}

// Write is a write to a node's table.
type Write struct {
	Node *engine.PostgresTable
	engine.PostgresWrite
}

// Result is what became of a Write: Applied when the table took it (false:
// the table keeps its key at its version or a later one), or Err, an
// error retrying cannot fix (a value the table's types or constraints
// refuse): the write was not applied.
type Result struct {
	Applied bool
	Err     error
}

// ErrRejected marks an error retrying cannot fix: PostgreSQL refused a value
// (a type it does not convert to, a constraint it violates), or the table
// cannot take the rows (no unique index on the key columns).
var ErrRejected = errors.New("rejected by PostgreSQL")

type rejected struct{ err error }

func (e rejected) Error() string        { return e.err.Error() }
func (e rejected) Unwrap() error        { return e.err }
func (e rejected) Is(target error) bool { return target == ErrRejected }

// Permanent reports whether retrying err cannot help.
func Permanent(err error) bool { return errors.Is(err, ErrRejected) }

// table is a target table as the writer knows it once ensured.
type table struct {
	node       *engine.PostgresTable
	name, dead string            // quoted names of the table and its tombstones
	casts      map[string]string // column → the type its text is cast to
	upsert     string
	delete     string
}

// Apply applies writes, in one round trip and one transaction when it can:
// a key written more than once in writes gets only its write of the highest
// version (the last of them, if equal); the others share its result, except
// those at or below the version of an earlier write of the key, which, as
// in sequence, are not applied. It returns each write's result,
// in order. When the batch fails on a value PostgreSQL rejects, it applies
// each key's write on its own, to set apart the ones that fail (their
// results carry the error) from the others. An error is one retrying may
// fix (PostgreSQL unreachable, restarting, a deadlock): nothing is known to
// be applied, and the writes may be applied again, as versions make
// applying twice harmless.
func (w *Writer) Apply(ctx context.Context, writes []Write) ([]Result, error) {
	results := make([]Result, len(writes))
	groups, byGroup := lastWrites(writes)
	superseded := supersededWrites(writes, byGroup)
	applied, err := w.apply(ctx, groups, writes)
	if err == nil {
		for i, g := range byGroup {
			results[i].Applied = applied[g] && !superseded[i]
		}
		return results, nil
	}
	if !Permanent(err) {
		return nil, err
	}
	// One at a time, to find the rejected ones.
	for gi, last := range groups {
		one, err := w.apply(ctx, []int{last}, writes)
		var res Result
		switch {
		case err == nil:
			res.Applied = one[0]
		case Permanent(err):
			res.Err = err
		default:
			return nil, err
		}
		for i, g := range byGroup {
			if g == gi {
				results[i] = res
				results[i].Applied = res.Applied && !superseded[i]
			}
		}
	}
	return results, nil
}

// lastWrites returns, for each key written (by table and key, in order of
// first write), the index of its write of the highest version (the last of
// them); and for each write, the index of its key.
func lastWrites(writes []Write) (groups, byGroup []int) {
	index := map[string]int{}
	byGroup = make([]int, len(writes))
	for i, wr := range writes {
		k := wr.Node.Target + "\x00" + wr.KeyText()
		g, ok := index[k]
		if ok {
			if versionCompare(wr.Version, writes[groups[g]].Version) >= 0 {
				groups[g] = i
			}
		} else {
			g = len(groups)
			index[k] = g
			groups = append(groups, i)
		}
		byGroup[i] = g
	}
	return groups, byGroup
}

// supersededWrites tells, for each write, whether an earlier write of its
// key in writes has its version or a later one: in sequence, it would
// change nothing.
func supersededWrites(writes []Write, byGroup []int) []bool {
	out := make([]bool, len(writes))
	highest := map[int]string{}
	for i, wr := range writes {
		g := byGroup[i]
		if h, ok := highest[g]; ok && versionCompare(wr.Version, h) <= 0 {
			out[i] = true
			continue
		}
		highest[g] = wr.Version
	}
	return out
}

// versionCompare compares two versions, decimal integers without sign or
// leading zeros.
func versionCompare(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// apply applies the writes at indexes (one per key) in one transaction,
// and tells for each whether it was applied.
func (w *Writer) apply(ctx context.Context, indexes []int, writes []Write) ([]bool, error) {
	type part struct {
		t              *table
		upsert, delete []int // positions in indexes
	}
	var parts []*part
	byTarget := map[string]*part{}
	for pos, i := range indexes {
		wr := writes[i]
		p := byTarget[wr.Node.Target]
		if p == nil {
			t, err := w.ensured(ctx, wr.Node)
			if err != nil {
				return nil, err
			}
			p = &part{t: t}
			byTarget[wr.Node.Target] = p
			parts = append(parts, p)
		}
		if wr.Delete {
			p.delete = append(p.delete, pos)
		} else {
			p.upsert = append(p.upsert, pos)
		}
	}
	batch := &pgx.Batch{}
	type query struct {
		p   *part
		ord []int
	}
	var queries []query
	for _, p := range parts {
		if len(p.upsert) > 0 {
			batch.Queue(p.t.upsert, p.t.upsertArgs(writes, indexes, p.upsert)...)
			queries = append(queries, query{p, p.upsert})
		}
		if len(p.delete) > 0 {
			batch.Queue(p.t.delete, p.t.deleteArgs(writes, indexes, p.delete)...)
			queries = append(queries, query{p, p.delete})
		}
	}
	// One round trip: the batch's statements run in one implicit
	// transaction, so a failing one rolls back the others.
	applied := make([]bool, len(indexes))
	err := func() error {
		br := w.pool.SendBatch(ctx, batch)
		defer br.Close()
		for _, q := range queries {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var ord int64
				if err := rows.Scan(&ord); err != nil {
					rows.Close()
					return err
				}
				applied[q.ord[ord-1]] = true
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		if schemaChanged(err) {
			// The table was dropped or altered under the writer: ensure it
			// again before the next attempt.
			w.mu.Lock()
			for _, p := range parts {
				delete(w.tables, p.t.node.Target)
			}
			w.mu.Unlock()
		}
		return nil, classify(err)
	}
	return applied, nil
}

// classify marks the errors retrying cannot fix as rejected.
func classify(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch {
	case strings.HasPrefix(pg.Code, "22"), // data exception: a value the type refuses
		strings.HasPrefix(pg.Code, "23"), // integrity constraint violation
		pg.Code == "42804",               // datatype mismatch
		pg.Code == "42846",               // cannot coerce
		pg.Code == "54000":               // program limit exceeded (a value too large to index)
		return rejected{fmt.Errorf("%s (SQLSTATE %s)", pg.Message, pg.Code)}
	}
	return err
}

// schemaChanged tells whether err says a table or column the writer knew
// is gone.
func schemaChanged(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "42P01" || pg.Code == "42703")
}

// Transient tells whether err is one of PostgreSQL being unreachable or
// restarting (or a lock conflict), which passes.
func Transient(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return !Permanent(classify(err))
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded)
}

// ensured returns the table of node, ensuring it first if needed.
func (w *Writer) ensured(ctx context.Context, node *engine.PostgresTable) (*table, error) {
	w.mu.Lock()
	t := w.tables[node.Target]
	w.mu.Unlock()
	if t != nil {
		return t, nil
	}
	if err := w.Ensure(ctx, node); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tables[node.Target], nil
}

// quote returns the quoted name of a target or its tombstones.
func quote(target string) string {
	schema, name := engine.SplitTarget(target)
	if schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// Ensure creates node's table if it is missing (its schema too), with the
// node's columns (key columns as primary key, the others nullable) and the
// version and position columns; adds the columns an existing table lacks;
// checks that it has a unique index on the key columns, which the upserts
// need; and creates the table of tombstones. It never drops or changes a
// column. An error wrapping [ErrRejected] says what to fix in the table.
func (w *Writer) Ensure(ctx context.Context, node *engine.PostgresTable) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = w.ensure(ctx, node); err == nil || Permanent(err) || !racing(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ensure postgres table %s: %w", node.Target, err)
	}
	return nil
}

// racing tells whether err is one of two processors creating the same
// table at once: the next attempt finds it.
func racing(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "42P07" || pg.Code == "42701" || pg.Code == "42P06")
}

func (w *Writer) ensure(ctx context.Context, node *engine.PostgresTable) error {
	if err := node.Validate(); err != nil {
		return rejected{err}
	}
	name, dead := quote(node.Target), quote(engine.Tombstones(node.Target))
	if schema, _ := engine.SplitTarget(node.Target); schema != "" {
		if _, err := w.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(schema)); err != nil {
			return err
		}
	}
	var cols []string
	for _, c := range node.Columns {
		cols = append(cols, ident(c.Name)+" "+c.Type)
	}
	keys := make([]string, len(node.Key))
	for i, k := range node.Key {
		keys[i] = ident(k)
	}
	create := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, %s numeric NOT NULL DEFAULT 0, %s text, PRIMARY KEY (%s))",
		name, strings.Join(cols, ", "), engine.VersionColumn, engine.PositionColumn, strings.Join(keys, ", "))
	if _, err := w.pool.Exec(ctx, create); err != nil {
		return err
	}
	have, err := columns(ctx, w.pool, name)
	if err != nil {
		return err
	}
	want := append(slices.Clone(node.Columns),
		engine.Column{Name: engine.VersionColumn, Type: "numeric NOT NULL DEFAULT 0"}, engine.Column{Name: engine.PositionColumn, Type: "text"})
	for _, c := range want {
		if _, ok := have[c.Name]; ok {
			continue
		}
		if _, err := w.pool.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", name, ident(c.Name), c.Type)); err != nil {
			return err
		}
	}
	if have, err = columns(ctx, w.pool, name); err != nil {
		return err
	}
	if err := uniqueOn(ctx, w.pool, name, node.Key); err != nil {
		return err
	}
	var deadCols []string
	for _, k := range node.Key {
		deadCols = append(deadCols, ident(k)+" "+have[k].full)
	}
	createDead := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, %s numeric NOT NULL, %s text, %s timestamptz NOT NULL, PRIMARY KEY (%s))",
		dead, strings.Join(deadCols, ", "), engine.VersionColumn, engine.PositionColumn, engine.DeletedAtColumn, strings.Join(keys, ", "))
	if _, err := w.pool.Exec(ctx, createDead); err != nil {
		return err
	}
	t := &table{node: node, name: name, dead: dead, casts: map[string]string{}}
	for _, c := range node.Columns {
		t.casts[c.Name] = have[c.Name].base
	}
	t.upsert, t.delete = t.upsertSQL(), t.deleteSQL()
	w.mu.Lock()
	w.tables[node.Target] = t
	w.mu.Unlock()
	return nil
}

type columnType struct{ base, full string }

// columns returns the columns of the table name (quoted), with their types.
func columns(ctx context.Context, pool *pgxpool.Pool, name string) (map[string]columnType, error) {
	rows, err := pool.Query(ctx, `SELECT attname, format_type(atttypid, NULL), format_type(atttypid, atttypmod)
		FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, name)
	if err != nil {
		return nil, err
	}
	out := map[string]columnType{}
	var n string
	var ct columnType
	_, err = pgx.ForEachRow(rows, []any{&n, &ct.base, &ct.full}, func() error {
		out[n] = ct
		return nil
	})
	return out, err
}

// uniqueOn checks that the table name (quoted) has a unique index (its
// primary key, say) on exactly the columns key.
func uniqueOn(ctx context.Context, pool *pgxpool.Pool, name string, key []string) error {
	rows, err := pool.Query(ctx, `SELECT array_agg(a.attname::text ORDER BY a.attname)
		FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		GROUP BY i.indexrelid`, name)
	if err != nil {
		return err
	}
	want := slices.Sorted(slices.Values(key))
	found := false
	var cols []string
	_, err = pgx.ForEachRow(rows, []any{&cols}, func() error {
		found = found || slices.Equal(cols, want)
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return rejected{fmt.Errorf("table %s has no primary key or unique index on (%s), which upserts need: add one (ALTER TABLE %s ADD PRIMARY KEY (%s)), or name the key columns it has with topologies.PrimaryKey",
			name, strings.Join(key, ", "), name, strings.Join(key, ", "))}
	}
	return nil
}

func (t *table) cast(col string) string {
	if c := t.casts[col]; c != "" {
		return c
	}
	return "text"
}

func (t *table) keyMatch(a, b string) string {
	var conds []string
	for _, k := range t.node.Key {
		conds = append(conds, fmt.Sprintf("%s.%s = %s.%s", a, ident(k), b, ident(k)))
	}
	return strings.Join(conds, " AND ")
}

// upsertSQL writes rows given as arrays of text, one per column then the
// versions and positions, and returns the ordinals of the rows it wrote.
func (t *table) upsertSQL() string {
	n := len(t.node.Columns)
	var arrays, names, casted, sets []string
	for i, c := range t.node.Columns {
		arrays = append(arrays, fmt.Sprintf("$%d::text[]", i+1))
		names = append(names, ident(c.Name))
		casted = append(casted, fmt.Sprintf("%s::%s AS %s", ident(c.Name), t.cast(c.Name), ident(c.Name)))
		if !slices.Contains(t.node.Key, c.Name) {
			sets = append(sets, fmt.Sprintf("%s = EXCLUDED.%s", ident(c.Name), ident(c.Name)))
		}
	}
	ver, pos := engine.VersionColumn, engine.PositionColumn
	sets = append(sets, ver+" = EXCLUDED."+ver, pos+" = EXCLUDED."+pos)
	keys := make([]string, len(t.node.Key))
	for i, k := range t.node.Key {
		keys[i] = ident(k)
	}
	return fmt.Sprintf(`WITH v AS (
	SELECT ord, %[1]s, %[2]s::numeric AS %[2]s, %[3]s
	FROM unnest(%[4]s, $%[5]d::text[], $%[6]d::text[]) WITH ORDINALITY AS v(%[7]s, %[2]s, %[3]s, ord)
), written AS (
	INSERT INTO %[8]s AS t (%[7]s, %[2]s, %[3]s)
	SELECT %[7]s, %[2]s, %[3]s FROM v
	WHERE NOT EXISTS (SELECT 1 FROM %[9]s d WHERE %[10]s AND d.%[2]s >= v.%[2]s)
	ON CONFLICT (%[11]s) DO UPDATE SET %[12]s
	WHERE t.%[2]s < EXCLUDED.%[2]s
	RETURNING %[13]s
)
SELECT v.ord FROM v JOIN written w ON %[14]s`,
		strings.Join(casted, ", "), ver, pos, strings.Join(arrays, ", "), n+1, n+2, strings.Join(names, ", "),
		t.name, t.dead, t.keyMatch("d", "v"), strings.Join(keys, ", "), strings.Join(sets, ", "),
		"t."+strings.Join(keys, ", t."), t.keyMatch("v", "w"))
}

// deleteSQL deletes the rows of keys given as arrays of text, one per key
// column then the versions, positions and delete times (Unix ms, 0 for
// now), unless a row is newer than its delete; it leaves a tombstone for
// each delete newer than the row and than the key's tombstone, and returns
// the ordinals of the deletes it recorded.
func (t *table) deleteSQL() string {
	var arrays, names, casted []string
	for i, k := range t.node.Key {
		arrays = append(arrays, fmt.Sprintf("$%d::text[]", i+1))
		names = append(names, ident(k))
		casted = append(casted, fmt.Sprintf("%s::%s AS %s", ident(k), t.cast(k), ident(k)))
	}
	n := len(t.node.Key)
	ver, pos, at := engine.VersionColumn, engine.PositionColumn, engine.DeletedAtColumn
	return fmt.Sprintf(`WITH v AS (
	SELECT ord, %[1]s, %[2]s::numeric AS %[2]s, %[3]s,
		CASE WHEN at::bigint = 0 THEN now() ELSE to_timestamp(at::bigint / 1000.0) END AS %[4]s
	FROM unnest(%[5]s, $%[6]d::text[], $%[7]d::text[], $%[8]d::text[]) WITH ORDINALITY AS v(%[9]s, %[2]s, %[3]s, at, ord)
), gone AS (
	DELETE FROM %[10]s t USING v WHERE %[11]s AND t.%[2]s < v.%[2]s
), dead AS (
	INSERT INTO %[12]s AS d (%[9]s, %[2]s, %[3]s, %[4]s)
	SELECT %[9]s, %[2]s, %[3]s, %[4]s FROM v
	WHERE NOT EXISTS (SELECT 1 FROM %[10]s t WHERE %[11]s AND t.%[2]s >= v.%[2]s)
	ON CONFLICT (%[9]s) DO UPDATE SET %[2]s = EXCLUDED.%[2]s, %[3]s = EXCLUDED.%[3]s, %[4]s = EXCLUDED.%[4]s
	WHERE d.%[2]s < EXCLUDED.%[2]s
	RETURNING %[13]s
)
SELECT v.ord FROM v JOIN dead r ON %[14]s`,
		strings.Join(casted, ", "), ver, pos, at, strings.Join(arrays, ", "), n+1, n+2, n+3, strings.Join(names, ", "),
		t.name, t.keyMatch("t", "v"), t.dead, "d."+strings.Join(names, ", d."), t.keyMatch("v", "r"))
}

func (t *table) upsertArgs(writes []Write, indexes, at []int) []any {
	cols := make([][]*string, len(t.node.Columns)+2)
	for _, pos := range at {
		wr := writes[indexes[pos]]
		for c := range t.node.Columns {
			cols[c] = append(cols[c], wr.Values[c])
		}
		v, p := wr.Version, wr.Position.String()
		cols[len(t.node.Columns)] = append(cols[len(t.node.Columns)], &v)
		cols[len(t.node.Columns)+1] = append(cols[len(t.node.Columns)+1], &p)
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	return args
}

func (t *table) deleteArgs(writes []Write, indexes, at []int) []any {
	n := len(t.node.Key)
	cols := make([][]*string, n+3)
	for _, pos := range at {
		wr := writes[indexes[pos]]
		for k := range n {
			cols[k] = append(cols[k], wr.Key[k])
		}
		v, p, a := wr.Version, wr.Position.String(), strconv.FormatInt(wr.At, 10)
		cols[n], cols[n+1], cols[n+2] = append(cols[n], &v), append(cols[n+1], &p), append(cols[n+2], &a)
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	return args
}

// Compact deletes the tombstones of node's table whose delete committed
// before olderThan (by the source commit time), and returns how many it
// deleted. A change of such a key older than its delete, delivered after,
// writes the row again.
func (w *Writer) Compact(ctx context.Context, node *engine.PostgresTable, olderThan time.Time) (int64, error) {
	tag, err := w.pool.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s < $1", quote(engine.Tombstones(node.Target)), engine.DeletedAtColumn), olderThan)
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "42P01" {
			return 0, nil // not created yet
		}
		return 0, fmt.Errorf("compact tombstones of %s: %w", node.Target, err)
	}
	return tag.RowsAffected(), nil
}
