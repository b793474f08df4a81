package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// The signal types capture acts on, as Debezium names them. A signal is a
// row inserted into Config.SignalTable: id, type and data (JSON).
const (
	// SignalExecuteSnapshot starts an incremental snapshot of tables:
	// {"data-collections": ["public.orders"], "type": "incremental",
	// "additional-conditions": [{"data-collection": "public.orders",
	// "filter": "status = 'paid'"}]}. Tables already waiting are not added
	// twice; names are captured tables or patterns of them.
	SignalExecuteSnapshot = "execute-snapshot"
	// SignalStopSnapshot ends the incremental snapshots of tables, or of all
	// without data-collections: {"data-collections": ["public.orders"],
	// "type": "incremental"}.
	SignalStopSnapshot = "stop-snapshot"
	// SignalLog writes a message to capture's log: {"message": "..."}.
	SignalLog = "log"
)

// signalOutput is a row inserted into the signalling table, at Position:
// the commit LSN of its transaction and its rank among the transaction's
// signals.
type signalOutput struct {
	Position       change.Position
	ID, Type, Data string
}

func (signalOutput) isOutput() {}

// signal turns an insert into the signalling table into a signal.
func (a *assembler) signal(rel *relation, tuple *pglogrepl.TupleData) []output {
	a.tx.signals++
	o := signalOutput{Position: change.Position{CommitLSN: a.tx.commit, Index: a.tx.signals}}
	for name, v := range rawTuple(rel.src, tuple) {
		if v == nil {
			continue
		}
		switch name {
		case "id":
			o.ID = *v
		case "type":
			o.Type = *v
		case "data":
			o.Data = *v
		}
	}
	return []output{o}
}

// signalCommand is a parsed signal.
type signalCommand struct {
	typ     string
	tables  []string          // data-collections
	filters map[string]string // data-collection → filter
	message string            // of a log signal
}

// snapshotSignalData is the data of execute-snapshot and stop-snapshot,
// as Debezium shapes it.
type snapshotSignalData struct {
	DataCollections      []string `json:"data-collections"`
	Type                 string   `json:"type"`
	AdditionalConditions []struct {
		DataCollection string `json:"data-collection"`
		Filter         string `json:"filter"`
	} `json:"additional-conditions"`
}

// parseSignal checks a signal's type and data.
func parseSignal(typ, data string) (signalCommand, error) {
	cmd := signalCommand{typ: strings.ToLower(strings.TrimSpace(typ))}
	switch cmd.typ {
	case SignalExecuteSnapshot, SignalStopSnapshot:
		var d snapshotSignalData
		if strings.TrimSpace(data) != "" {
			dec := json.NewDecoder(strings.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				return cmd, fmt.Errorf("%s signal data is not {\"data-collections\": [...], \"type\": \"incremental\", \"additional-conditions\": [...]}: %v", cmd.typ, err)
			}
		}
		if t := strings.ToLower(d.Type); t != "" && t != "incremental" {
			return cmd, fmt.Errorf("%s signal of type %q: capture runs only incremental snapshots (type \"incremental\")", cmd.typ, d.Type)
		}
		if cmd.typ == SignalExecuteSnapshot && len(d.DataCollections) == 0 {
			return cmd, errors.New("execute-snapshot signal names no data-collections: list the tables to read, e.g. [\"public.orders\"]")
		}
		for _, name := range d.DataCollections {
			if err := checkPattern(qualify(strings.TrimSpace(name)), 2); err != nil {
				return cmd, fmt.Errorf("%s signal: data-collection %w", cmd.typ, err)
			}
			cmd.tables = append(cmd.tables, qualify(strings.TrimSpace(name)))
		}
		if len(d.AdditionalConditions) > 0 && cmd.typ != SignalExecuteSnapshot {
			return cmd, errors.New("stop-snapshot signal has additional-conditions: they belong to execute-snapshot")
		}
		for _, cond := range d.AdditionalConditions {
			name := qualify(strings.TrimSpace(cond.DataCollection))
			if !slices.Contains(cmd.tables, name) && !matchAny(cmd.tables, name) {
				return cmd, fmt.Errorf("execute-snapshot signal: additional condition for %q, which is not among its data-collections %v", cond.DataCollection, d.DataCollections)
			}
			if strings.TrimSpace(cond.Filter) == "" {
				return cmd, fmt.Errorf("execute-snapshot signal: additional condition for %q has no filter", cond.DataCollection)
			}
			if cmd.filters == nil {
				cmd.filters = map[string]string{}
			}
			cmd.filters[name] = cond.Filter
		}
	case SignalLog:
		var d struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil || d.Message == "" {
			return cmd, fmt.Errorf("log signal data is not {\"message\": \"...\"}: %q", data)
		}
		cmd.message = d.Message
	default:
		return cmd, fmt.Errorf("unknown signal type %q: capture acts on execute-snapshot, stop-snapshot and log", typ)
	}
	return cmd, nil
}

// applySignal acts on a signal from the signalling table: it changes the
// incremental snapshots to do, which are committed with the next checkpoint
// and before the slot is confirmed past the signal. A signal capture
// cannot act on is logged and ignored. A signal acted on before a restart
// is not acted on again.
func (c *Capture) applySignal(o signalOutput) error {
	if last := c.pub.lastSignal; last != nil && o.Position.Compare(*last) <= 0 {
		return nil
	}
	pos := o.Position
	c.pub.lastSignal = &pos
	if err := c.pub.stateChanged(); err != nil {
		return err
	}
	log := c.log.With("signal", o.ID, "type", o.Type, "data", o.Data)
	cmd, err := parseSignal(o.Type, o.Data)
	if err != nil {
		c.metrics.signals.WithLabelValues(signalLabel(cmd.typ), "ignored").Inc()
		log.Warn("signal ignored", "err", err)
		return nil
	}
	switch cmd.typ {
	case SignalLog:
		log.Info("signal: " + cmd.message)
	case SignalExecuteSnapshot:
		tables, unknown := c.signalTables(cmd.tables)
		if len(unknown) > 0 {
			log.Warn("signal names tables capture does not capture; they are left out", "tables", unknown, "captured", c.tables)
		}
		added := c.queueIncremental(tables, cmd.filters, "signal "+o.ID)
		if len(added) == 0 {
			c.metrics.signals.WithLabelValues(cmd.typ, "ignored").Inc()
			log.Warn("signal ignored: no table to add (each is being read or waits already, or is not captured)")
			return nil
		}
		log.Info("incremental snapshot requested", "tables", added)
	case SignalStopSnapshot:
		stopped := c.stopIncremental(cmd.tables)
		log.Info("incremental snapshot stopped", "tables", stopped)
	}
	c.metrics.signals.WithLabelValues(cmd.typ, "applied").Inc()
	c.publishProgress()
	return nil
}

// signalLabel is the metric label of a signal type: one of the known
// types, or "unknown".
func signalLabel(typ string) string {
	switch typ {
	case SignalExecuteSnapshot, SignalStopSnapshot, SignalLog:
		return typ
	}
	return "unknown"
}

// signalTables resolves a signal's data-collections, names or patterns, to
// captured tables, in the order captured tables are listed, and returns
// the names that match none.
func (c *Capture) signalTables(names []string) (tables []string, unknown []string) {
	for _, name := range names {
		if !slices.ContainsFunc(c.tables, func(t string) bool { return matchAny([]string{name}, t) }) {
			unknown = append(unknown, name)
		}
	}
	for _, t := range c.tables {
		if matchAny(names, t) {
			tables = append(tables, t)
		}
	}
	return tables, unknown
}

// queueIncremental adds tables to the incremental snapshots to do, with
// the filters of those named (or matched) in filters, unless they are
// waiting or being read already; it returns those it added.
func (c *Capture) queueIncremental(tables []string, filters map[string]string, reason string) []string {
	st := c.pub.incremental
	if st == nil {
		st = &IncrementalState{}
	}
	var added []string
	for _, t := range tables {
		if slices.ContainsFunc(st.Tables, func(it IncrementalTable) bool { return it.Table == t }) {
			continue
		}
		var filter string
		for name, f := range filters {
			if matchAny([]string{name}, t) {
				filter = f
			}
		}
		st.Tables = append(st.Tables, IncrementalTable{Table: t, Filter: filter, Reason: reason})
		added = append(added, t)
	}
	if len(st.Tables) > 0 {
		c.pub.incremental = st
	}
	return added
}

// stopIncremental ends the incremental snapshots of the tables that match
// names, or of all when names is empty, and returns those it ended.
func (c *Capture) stopIncremental(names []string) []string {
	st := c.pub.incremental
	if st == nil {
		return nil
	}
	var stopped []string
	for i := 0; i < len(st.Tables); {
		t := st.Tables[i]
		if len(names) > 0 && !matchAny(names, t.Table) {
			i++
			continue
		}
		stopped = append(stopped, t.Table)
		p := IncrementalProgress{Table: t.Table, Filter: t.Filter, Reason: t.Reason, Rows: t.Rows, Estimate: t.Estimate, Stopped: true}
		if i == 0 {
			c.endIncrementalTable(p) // its chunk in flight, if any, is dropped
			if c.pub.incremental == nil {
				break
			}
			continue
		}
		st.Tables = slices.Delete(st.Tables, i, i+1)
		c.incr.ended = append(c.incr.ended, p)
	}
	return stopped
}

// Signal sends a signal to capture: it inserts a row of type typ and data
// into Config.SignalTable, as a user would, and returns once it is
// committed. Capture acts on it when the replication stream reaches it:
// at once while Run streams, else when it next does. The type and data are
// checked first: a signal capture would ignore is an error here. Safe for
// concurrent use, before, during and after Run.
func (c *Capture) Signal(ctx context.Context, typ, data string) error {
	if c.cfg.SignalTable == "" {
		return errors.New("capture has no signal table: set Config.SignalTable to send it signals")
	}
	if _, err := parseSignal(typ, data); err != nil {
		return err
	}
	conn, err := connect(ctx, c.cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var id [16]byte
	rand.Read(id[:])
	var value *string
	if data != "" {
		value = &data
	}
	schema, table, _ := splitTable(c.cfg.SignalTable)
	sql := fmt.Sprintf("INSERT INTO %s (id, type, data) VALUES ($1, $2, $3)", pgx.Identifier{schema, table}.Sanitize())
	if _, err := conn.Exec(ctx, sql, hex.EncodeToString(id[:]), typ, value); err != nil {
		return fmt.Errorf("insert signal into %s.%s: %w", schema, table, err)
	}
	return nil
}

// ensureSignalTable creates the signalling table in Debezium's shape unless
// it exists, and checks that it has the columns of a signal.
func ensureSignalTable(ctx context.Context, conn *pgx.Conn, name string) error {
	schema, table, _ := splitTable(name)
	ident := pgx.Identifier{schema, table}.Sanitize()
	rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, schema, table)
	if err != nil {
		return fmt.Errorf("look up signal table %s.%s: %w", schema, table, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look up signal table %s.%s: %w", schema, table, err)
	}
	create := fmt.Sprintf("CREATE TABLE %s (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))", ident)
	if len(cols) == 0 {
		if _, err := conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("%s: %w; create the signal table yourself, or give the user CREATE on schema %s", create, err, schema)
		}
		return nil
	}
	var missing []string
	for _, want := range []string{"id", "type", "data"} {
		if !slices.Contains(cols, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("signal table %s.%s lacks the columns %v; it needs Debezium's shape: %s", schema, table, missing, create)
	}
	return nil
}
