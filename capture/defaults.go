package capture

import (
	"regexp"
	"strings"

	"github.com/cdcflow/cdcflow/change"
)

// defaultPlaceholders are the types whose defaults Debezium's
// PostgresDefaultValueConverter reads, each with the value it gives a
// default a function computes (nextval(...), now(), gen_random_uuid()), in
// PostgreSQL's text form; "" for none. It reads no other type's default
// (money, bytea, enums, domains, arrays, ...).
var defaultPlaceholders = map[string]string{
	"bool": "false", "bpchar": "", "varchar": "", "text": "",
	"numeric": "0.0", "float4": "0.0", "float8": "0.0", "int2": "0", "int4": "0", "int8": "0",
	"json": "{}", "jsonb": "{}", "xml": "", "uuid": "00000000-0000-0000-0000-000000000000",
	"date": "1970-01-01", "time": "00:00:00", "timestamp": "1970-01-01 00:00:00", "timestamptz": "1970-01-01 00:00:00+00",
	"interval": noPlaceholder, // Debezium's placeholder, "epoch", is no interval
}

// noPlaceholder marks a type whose computed defaults Debezium cannot read.
const noPlaceholder = "\x00"

// functionDefault matches a default a function computes, as Debezium's
// FUNCTION_DEFAULT_PATTERN does.
var functionDefault = regexp.MustCompile(`^[(]?[A-Za-z0-9_]+\((?:.+(?:, ?.+)*)?\)`)

// columnDefault returns the value of c's DEFAULT, expr as pg_get_expr prints
// it, the way Debezium's PostgresDefaultValueConverter reads it: NULL::...
// is none; a function gives the type's placeholder; otherwise the first
// quoted literal ('new'::text), or the expression itself (42, true), is
// parsed as a value of c's type. It returns nil for none, and for what does
// not parse (CURRENT_TIMESTAMP): Debezium gives those no default either.
// Unlike Debezium, a quote doubled inside the literal is one quote.
func columnDefault(dec *decoder, c change.Column, expr string) any {
	placeholder, ok := defaultPlaceholders[c.Type]
	if !ok || c.Elem != nil || c.EnumValues != nil || strings.HasPrefix(expr, "NULL::") {
		return nil
	}
	text := expr
	switch {
	case functionDefault.MatchString(expr):
		if placeholder == noPlaceholder {
			return nil
		}
		text = placeholder
	case strings.Contains(expr, "'"):
		text = firstLiteral(expr)
	}
	if c.Type == "bool" { // Java's Boolean.parseBoolean
		return strings.EqualFold(text, "true")
	}
	v, err := dec.value(c, text)
	if err != nil {
		return nil
	}
	return v
}

// firstLiteral returns the first single-quoted SQL literal in s, ” read as
// one quote.
func firstLiteral(s string) string {
	_, rest, _ := strings.Cut(s, "'")
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\'' {
			if i+1 < len(rest) && rest[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			break
		}
		b.WriteByte(rest[i])
	}
	return b.String()
}
