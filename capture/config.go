package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Config configures a [Capture]. DSN and Tables are required; every other
// field has a default.
type Config struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://user:pass@host:5432/db. Capture opens one ordinary and one
	// replication connection with it; the user needs the REPLICATION
	// attribute and ownership of the captured tables (to create the
	// publication).
	DSN string
	// Tables lists the captured tables as schema.table (schema defaults to
	// public).
	Tables []string
	// TopicPrefix names the topics, <prefix>.<schema>.<table>, and the
	// envelopes' source.name. Default "cdcflow".
	TopicPrefix string
	// Slot is the logical replication slot. Default "cdcflow".
	Slot string
	// Publication is the publication capture reads. Default "cdcflow".
	Publication string
	// StatusInterval is how often capture reports its confirmed position to
	// PostgreSQL. Default 10s.
	StatusInterval time.Duration
	// Logger receives capture's log lines. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = "cdcflow"
	}
	if c.Slot == "" {
		c.Slot = "cdcflow"
	}
	if c.Publication == "" {
		c.Publication = "cdcflow"
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("no PostgreSQL DSN: set --pg-dsn (CDCFLOW_PG_DSN), e.g. postgres://user:pass@localhost:5432/db"))
	}
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("no tables to capture: set --tables (CDCFLOW_TABLES), e.g. public.orders"))
	}
	for _, t := range c.Tables {
		if _, _, err := splitTable(t); err != nil {
			errs = append(errs, err)
		}
	}
	if !identifier.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("slot name %q is invalid: use lower-case letters, digits and underscores", c.Slot))
	}
	if !identifier.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("publication name %q is invalid: use lower-case letters, digits and underscores", c.Publication))
	}
	if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(c.TopicPrefix) {
		errs = append(errs, fmt.Errorf("topic prefix %q is invalid: start with a letter or '_', then letters, digits or '_'", c.TopicPrefix))
	}
	if c.StatusInterval < 0 {
		errs = append(errs, fmt.Errorf("status interval %v is negative", c.StatusInterval))
	}
	return errors.Join(errs...)
}

// splitTable splits "schema.table" (or "table", in schema public).
func splitTable(s string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		schema, table = "public", s
	}
	if !identifier.MatchString(schema) || !identifier.MatchString(table) {
		return "", "", fmt.Errorf("table %q is not a plain schema.table name (lower-case letters, digits, underscores)", s)
	}
	return schema, table, nil
}
