package capture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// hasWildcard reports whether a table or column pattern has wildcards.
func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[") }

// qualify puts a table pattern in schema.table form.
func qualify(p string) string {
	if !strings.Contains(p, ".") {
		return "public." + p
	}
	return p
}

// matchAny reports whether name matches one of patterns (path.Match syntax:
// * any run of characters, ? one character, [a-z] a class).
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// resolveTables turns the include and exclude lists into the captured
// tables, schema.table, sorted. Names without wildcards are kept as given
// (preflight then says if one does not exist); patterns are matched against
// the database's tables.
func resolveTables(ctx context.Context, conn *pgx.Conn, include, exclude []string) ([]string, error) {
	var exact, patterns []string
	for _, p := range include {
		if hasWildcard(p) {
			patterns = append(patterns, qualify(p))
		} else {
			schema, table, _ := splitTable(p)
			exact = append(exact, schema+"."+table)
		}
	}
	excl := make([]string, len(exclude))
	for i, p := range exclude {
		excl[i] = qualify(p)
	}
	out := slices.Clone(exact)
	if len(patterns) > 0 {
		rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
			  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'`)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, n := range names {
			if matchAny(patterns, n) {
				out = append(out, n)
			}
		}
	}
	out = slices.DeleteFunc(out, func(n string) bool { return matchAny(excl, n) })
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%w --tables %v (minus --exclude-tables %v); check the patterns", errNoTableMatches, include, exclude)
	}
	return out, nil
}

// errNoTableMatches: the table patterns match no table.
var errNoTableMatches = errors.New("no table matches")

// columnRule is what happens to one column.
type columnRule int

const (
	keepColumn columnRule = iota
	excludeColumn
	maskColumn
)

// relation is a captured table as the source describes it and as capture
// publishes it: without excluded columns, with masked ones as text hashes.
type relation struct {
	src   *change.Table
	pub   *change.Table
	rules []columnRule // per source column
}

// newRelation applies the column rules of cfg to the source table.
func newRelation(cfg *Config, src *change.Table) (*relation, error) {
	r := &relation{src: src, pub: &change.Table{Schema: src.Schema, Name: src.Name}}
	for _, col := range src.Columns {
		name := src.String() + "." + col.Name
		rule := keepColumn
		switch {
		case matchAny(cfg.ExcludeColumns, name):
			rule = excludeColumn
		case matchAny(cfg.MaskColumns, name):
			rule = maskColumn
		}
		if rule != keepColumn && col.Key {
			return nil, fmt.Errorf("column %s is part of the key and cannot be excluded or masked; remove it from --exclude-columns/--mask-columns", name)
		}
		r.rules = append(r.rules, rule)
		switch rule {
		case keepColumn:
			r.pub.Columns = append(r.pub.Columns, col)
		case maskColumn:
			masked := col // no default: it would show a value the mask hides
			masked.Type, masked.OID, masked.TypeMod, masked.Default = "text", 25, -1, nil
			r.pub.Columns = append(r.pub.Columns, masked)
		}
	}
	return r, nil
}

// mask hashes a value for a masked column: hex SHA-256 of salt and value,
// as Debezium's column.mask.hash.SHA-256.with.salt does.
func mask(salt string, value []byte) []byte {
	sum := sha256.Sum256(append([]byte(salt), value...))
	return []byte(hex.EncodeToString(sum[:]))
}

// tuple applies the rules to a tuple of the source table: the tuple of the
// published table.
func (r *relation) tuple(salt string, t *pglogrepl.TupleData) *pglogrepl.TupleData {
	if t == nil || !r.filtered() {
		return t
	}
	out := &pglogrepl.TupleData{}
	for i, col := range t.Columns {
		if i >= len(r.rules) {
			break
		}
		switch r.rules[i] {
		case keepColumn:
			out.Columns = append(out.Columns, col)
		case maskColumn:
			if col.DataType == pglogrepl.TupleDataTypeText {
				h := mask(salt, col.Data)
				out.Columns = append(out.Columns, &pglogrepl.TupleDataColumn{DataType: col.DataType, Length: uint32(len(h)), Data: h})
			} else {
				out.Columns = append(out.Columns, col) // NULL stays NULL, an unsent value stays unsent
			}
		}
	}
	out.ColumnNum = uint16(len(out.Columns))
	return out
}

// values applies the rules to a row of text values read by a snapshot.
func (r *relation) values(salt string, vals [][]byte) [][]byte {
	if !r.filtered() {
		return vals
	}
	out := make([][]byte, 0, len(r.pub.Columns))
	for i, v := range vals {
		switch r.rules[i] {
		case keepColumn:
			out = append(out, v)
		case maskColumn:
			if v != nil {
				v = mask(salt, v)
			}
			out = append(out, v)
		}
	}
	return out
}

func (r *relation) filtered() bool {
	return slices.ContainsFunc(r.rules, func(rule columnRule) bool { return rule != keepColumn })
}
