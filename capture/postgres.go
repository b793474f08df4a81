package capture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// textSettings pin how PostgreSQL prints values as text, which is how
// pgoutput sends them and how the decoder parses them: times in ISO and UTC,
// bytea in hex, money as "$1,234.56", intervals as "1 year 2 mons
// 03:04:05", floats with every digit. Both of capture's connections use
// them, so that a value read with a query decodes as it does from the WAL.
var textSettings = map[string]string{
	"timezone":           "UTC",
	"datestyle":          "ISO",
	"bytea_output":       "hex",
	"lc_monetary":        "C",
	"intervalstyle":      "postgres",
	"extra_float_digits": "3",
}

// connect opens the ordinary connection capture uses for its checks and
// catalog lookups. The error names the server, never the password.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL DSN is malformed (%v); use postgres://user:password@host:port/db", redact.URL(err.Error()))
	}
	maps.Copy(cfg.RuntimeParams, textSettings)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL unreachable at %s: %v; check --pg-dsn and that PostgreSQL is running", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), rootCause(err))
	}
	return conn, nil
}

// connectReplication opens a logical replication connection.
func connectReplication(ctx context.Context, dsn string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL DSN is malformed (%v); use postgres://user:password@host:port/db", redact.URL(err.Error()))
	}
	cfg.RuntimeParams["replication"] = "database"
	maps.Copy(cfg.RuntimeParams, textSettings) // pgoutput prints with the session's settings
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return nil, fmt.Errorf("PostgreSQL refused a replication connection for user %s: %s; grant it with ALTER ROLE %s WITH REPLICATION", cfg.User, pgErr.Message, cfg.User)
		}
		return nil, fmt.Errorf("open replication connection to %s: %v; check pg_hba.conf allows replication connections for user %s", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), rootCause(err), cfg.User)
	}
	return conn, nil
}

// rootCause returns the innermost error message, which names the actual
// failure (connection refused, password authentication failed, ...).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// preflight checks what capture needs from PostgreSQL and says how to fix
// what is missing.
func preflight(ctx context.Context, conn *pgx.Conn, tables []string) error {
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if walLevel != "logical" {
		return fmt.Errorf("wal_level is %s; set wal_level=logical (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL", walLevel)
	}
	var errs []error
	for _, t := range tables {
		schema, name, _ := splitTable(t)
		var ident string
		var hasPK bool
		err := conn.QueryRow(ctx, `
			SELECT c.relreplident::text,
			       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, name).Scan(&ident, &hasPK)
		if errors.Is(err, pgx.ErrNoRows) {
			errs = append(errs, fmt.Errorf("table %s.%s does not exist; create it or remove it from --tables", schema, name))
			continue
		}
		if err != nil {
			return fmt.Errorf("inspect table %s.%s: %w", schema, name, err)
		}
		switch {
		case ident == "n":
			errs = append(errs, fmt.Errorf("table %s.%s has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be captured; run ALTER TABLE %s.%s REPLICA IDENTITY DEFAULT (or FULL)", schema, name, schema, name))
		case ident == "i":
		case !hasPK:
			errs = append(errs, fmt.Errorf("table %s.%s has no primary key or replica identity index, so its changes have no key; add a primary key, or run ALTER TABLE %s.%s REPLICA IDENTITY USING INDEX <unique index>", schema, name, schema, name))
		}
	}
	return errors.Join(errs...)
}

// ensurePublication creates the publication, or adds the tables it lacks.
func ensurePublication(ctx context.Context, conn *pgx.Conn, publication string, tables []string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", publication).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication %s: %w", publication, err)
	}
	have := map[string]bool{}
	if exists {
		rows, err := conn.Query(ctx, "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", publication)
		if err != nil {
			return fmt.Errorf("list tables of publication %s: %w", publication, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("list tables of publication %s: %w", publication, err)
		}
		for _, n := range names {
			have[n] = true
		}
	}
	var missing []string
	for _, t := range tables {
		schema, name, _ := splitTable(t)
		if !have[schema+"."+name] {
			missing = append(missing, pgx.Identifier{schema, name}.Sanitize())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	stmt := fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pgx.Identifier{publication}.Sanitize(), strings.Join(missing, ", "))
	if !exists {
		stmt = fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", pgx.Identifier{publication}.Sanitize(), strings.Join(missing, ", "))
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w; the user needs to own the tables (or be superuser) to publish them", stmt, err)
	}
	return nil
}

// createSlot creates the slot, a failover slot if failover, and returns
// its consistent point and the name of the snapshot it exported, valid
// while repl stays idle.
func createSlot(ctx context.Context, repl *pgconn.PgConn, slot string, failover bool) (change.LSN, string, error) {
	var res pglogrepl.CreateReplicationSlotResult
	var err error
	if failover {
		res, err = pglogrepl.ParseCreateReplicationSlot(repl.Exec(ctx, createSlotSQL(slot, true)))
	} else {
		res, err = pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	}
	if err != nil {
		return 0, "", fmt.Errorf("create replication slot %s: %w; check max_replication_slots and that the user has REPLICATION", slot, err)
	}
	lsn, err := change.ParseLSN(res.ConsistentPoint)
	return lsn, res.SnapshotName, err
}

// createSlotSQL is the replication command that creates a logical slot
// for pgoutput exporting its snapshot, in the option syntax of PostgreSQL
// 15 and later, with FAILOVER (PostgreSQL 17) if failover.
func createSlotSQL(slot string, failover bool) string {
	opts := "SNAPSHOT 'export'"
	if failover {
		opts += ", FAILOVER true"
	}
	return fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (%s)", pgx.Identifier{slot}.Sanitize(), opts)
}

// catalogColumn is a column as the catalog describes it: its type fields,
// key and nullability, and the text of its DEFAULT as pg_get_expr prints it
// (nil for none), which columnDefault reads into the column's Default.
type catalogColumn struct {
	change.Column
	DefaultExpr *string `json:",omitempty"`
}

// relationColumns reads what a pgoutput Relation message lacks from the
// catalog: type names (domains resolved to their base types), enum labels,
// array element types, nullability, defaults and which columns form the key.
func relationColumns(ctx context.Context, conn *pgx.Conn, rel *pglogrepl.RelationMessage) ([]catalogColumn, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname, NOT a.attnotnull,
		       COALESCE(a.attnum = ANY ((SELECT i.indkey FROM pg_index i
		                 WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident)
		                 ORDER BY i.indisprimary DESC LIMIT 1)::int2[]), false),
		       `+columnDefaultSQL+`
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, rel.RelationID)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", rel.Namespace, rel.RelationName, err)
	}
	type attr struct {
		nullable, key bool
		def           *string
	}
	attrs := map[string]attr{}
	for rows.Next() {
		var name string
		var a attr
		if err := rows.Scan(&name, &a.nullable, &a.key, &a.def); err != nil {
			return nil, err
		}
		attrs[name] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", rel.Namespace, rel.RelationName, err)
	}
	cols := make([]catalogColumn, len(rel.Columns))
	for i, rc := range rel.Columns {
		c, err := describeType(ctx, conn, rc.DataType, rc.TypeModifier)
		if err != nil {
			return nil, fmt.Errorf("look up type %d of %s.%s.%s: %w", rc.DataType, rel.Namespace, rel.RelationName, rc.Name, err)
		}
		a, ok := attrs[rc.Name]
		if !ok { // dropped since: keep what the relation message says
			a = attr{nullable: true, key: rc.Flags&1 != 0}
		}
		c.Name, c.Key, c.Nullable = rc.Name, a.key, a.nullable && !a.key
		cols[i] = catalogColumn{Column: c, DefaultExpr: a.def}
	}
	return cols, nil
}

// columnDefaultSQL selects the DEFAULT of column a (joined with its type t
// and pg_attrdef d) as pg_get_expr prints it, or NULL: a domain column's is
// not read (Debezium reads defaults by the column's type name, and knows no
// domain's), nor a generated column's expression.
const columnDefaultSQL = `CASE WHEN t.typtype <> 'd' AND a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END`

// tableColumns reads a table's columns from the catalog, as relationColumns
// describes them for pgoutput's Relation message (so both give the same
// schema: domains resolved, enum labels, array element types), and the
// planner's estimate of its row count.
func tableColumns(ctx context.Context, conn *pgx.Conn, schema, table string) (*change.Table, int64, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname, t.typname, a.atttypid::int8, a.atttypmod, NOT a.attnotnull,
		       COALESCE(a.attnum = ANY ((SELECT i.indkey FROM pg_index i
		                 WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident)
		                 ORDER BY i.indisprimary DESC LIMIT 1)::int2[]), false),
		       c.reltuples::int8, `+columnDefaultSQL+`
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, schema, table)
	if err != nil {
		return nil, 0, fmt.Errorf("read columns of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	t := &change.Table{Schema: schema, Name: table}
	var estimate int64
	var defaults []*string
	for rows.Next() {
		var col change.Column
		var oid int64
		var def *string
		if err := rows.Scan(&col.Name, &col.Type, &oid, &col.TypeMod, &col.Nullable, &col.Key, &estimate, &def); err != nil {
			return nil, 0, fmt.Errorf("read columns of %s.%s: %w", schema, table, err)
		}
		col.OID = uint32(oid)
		col.Nullable = col.Nullable && !col.Key
		t.Columns = append(t.Columns, col)
		defaults = append(defaults, def)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read columns of %s.%s: %w", schema, table, err)
	}
	rows.Close()
	dec := newDecoder()
	for i, col := range t.Columns {
		typ, err := describeType(ctx, conn, col.OID, col.TypeMod)
		if err != nil {
			return nil, 0, fmt.Errorf("look up type %d of %s.%s.%s: %w", col.OID, schema, table, col.Name, err)
		}
		typ.Name, typ.Key, typ.Nullable = col.Name, col.Key, col.Nullable
		if defaults[i] != nil {
			typ.Default = columnDefault(dec, typ, *defaults[i])
		}
		t.Columns[i] = typ
	}
	return t, max(estimate, 0), nil
}

// describeType returns the type fields of a column of type oid with type
// modifier mod: its name, the labels of an enum, the element type of an
// array. A domain is described as its base type, with the domain's modifier
// when the column has none (numeric(10,2) behind a domain keeps its scale).
func describeType(ctx context.Context, conn *pgx.Conn, oid uint32, mod int32) (change.Column, error) {
	for range 32 { // domains over domains, but never a cycle
		var (
			name, kind string
			base, elem uint32
			baseMod    int32
			labels     []string
		)
		err := conn.QueryRow(ctx, `
			SELECT t.typname, t.typtype::text, t.typbasetype, t.typtypmod,
			       CASE WHEN t.typinput = 'array_in'::regproc THEN t.typelem ELSE 0 END,
			       CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e
			                                           WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END
			FROM pg_type t WHERE t.oid = $1`, oid).Scan(&name, &kind, &base, &baseMod, &elem, &labels)
		if err != nil {
			return change.Column{}, err
		}
		if kind == "d" {
			oid = base
			if mod == -1 {
				mod = baseMod
			}
			continue
		}
		c := change.Column{Type: name, OID: oid, TypeMod: mod}
		if kind == "e" {
			c.EnumValues = labels
			if c.EnumValues == nil {
				c.EnumValues = []string{}
			}
		}
		if elem != 0 {
			e, err := describeType(ctx, conn, elem, mod)
			if err != nil {
				return change.Column{}, fmt.Errorf("element type %d: %w", elem, err)
			}
			c.Elem = &e
		}
		return c, nil
	}
	return change.Column{}, fmt.Errorf("type %d: domains nested too deep", oid)
}
