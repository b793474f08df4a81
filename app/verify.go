package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/connect"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/cdcflow/cdcflow/internal/verify"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/redis/go-redis/v9"
)

// verifyCmd compares the topologies' sinks with the source tables.
type verifyCmd struct {
	PgDSN string `name:"pg-dsn" help:"PostgreSQL connection string of the captured database, whose tables' current rows the sinks are compared with (the password is better kept in PGPASSWORD or ~/.pgpass)." env:"CDCFLOW_PG_DSN" redact:"url"`
	// The rows are compared as capture publishes them: give verify
	// capture's column settings.
	ColumnFlags `embed:""`
	JSON        bool     `name:"json" help:"Print the results as JSON, every difference included."`
	Topologies  []string `arg:"" optional:"" name:"topology" help:"Topologies to verify: ${topologies} (default: every one)."`
}

// shownDifferences is how many differences of one node the text output
// prints; --json prints all.
const shownDifferences = 20

func (c *verifyCmd) Run(ctx context.Context, e *env) error {
	f := e.flags
	if c.PgDSN == "" {
		return errors.New("no --pg-dsn: verify compares the sinks with the rows of the captured database; set it (or CDCFLOW_PG_DSN)")
	}
	if len(c.MaskColumns) > 0 && c.MaskSalt == "" {
		return errors.New("--mask-columns needs the --mask-salt (CDCFLOW_MASK_SALT) capture runs with: verify hashes the masked columns as capture does")
	}
	topos, svc, err := e.open(ctx, c.Topologies)
	if err != nil {
		return err
	}
	defer svc.close()
	k := svc.kafka
	vs := verify.Sinks{RedisPrefix: f.RedisPrefix, Table: k.Table, Elasticsearch: svc.es}
	if svc.redis != nil { // a nil *redis.Client is not a nil interface
		vs.Redis = svc.redis
	}
	rows, err := capture.OpenRows(ctx, capture.Config{DSN: c.PgDSN, ExcludeColumns: c.ExcludeColumns, MaskColumns: c.MaskColumns, MaskSalt: c.MaskSalt})
	if err != nil {
		return err
	}
	defer rows.Close()
	src := &tableSource{rows: rows, prefix: f.TopicPrefix, read: map[string][]engine.CurrentRow{}}

	// Lag first: a change not applied yet shows as a difference.
	var behind []string
	var results []verify.Result
	for _, t := range topos {
		d := deploymentOf(f.Group, t)
		for _, g := range d.groups {
			gl, err := k.GroupLag(ctx, g.name, g.inputs)
			if err != nil {
				return err
			}
			if gl.Records > 0 {
				behind = append(behind, fmt.Sprintf("%s (%d records)", g.name, gl.Records))
			}
		}
		rs, err := verify.Topology(ctx, t.Name, d.group, t.Engine(), src, vs)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	differences := 0
	for _, r := range results {
		differences += len(r.Differences)
	}
	if c.JSON {
		err = writeVerifyJSON(e.stdout, results, behind)
	} else {
		err = writeVerifyText(e.stdout, results, behind)
	}
	if err != nil {
		return err
	}
	if differences > 0 {
		return errReported
	}
	return nil
}

// services are the connections of a command that works on the topologies'
// state: Kafka, and Redis and Elasticsearch when the topologies keep
// something there (else nil).
type services struct {
	kafka *inspect.Kafka
	redis *redis.Client
	es    *elasticsearch.Client
}

func (s *services) close() {
	s.kafka.Close()
	if s.redis != nil {
		s.redis.Close()
	}
}

// open declares the topologies, picks those named names (all of them when
// none is named), checks the settings they need, and connects to the
// services they keep their state in.
func (e *env) open(ctx context.Context, names []string) ([]*topologies.Topology, *services, error) {
	f := e.flags
	topos, err := declare(Source{Prefix: f.TopicPrefix, Schema: f.Schema}, e.fns)
	if err != nil {
		return nil, nil, err
	}
	if topos, err = pick(topos, names); err != nil {
		return nil, nil, err
	}
	sinks := sinksOf(topos)
	var errs []error
	if _, err := f.Kafka.Connection(); err != nil {
		errs = append(errs, err)
	}
	svc, err := f.options()
	if err != nil {
		errs = append(errs, err)
	}
	if sinks.Redis && f.RedisAddr == "" {
		errs = append(errs, errors.New("no --redis-addr: a topology keeps metrics in Redis"))
	}
	if sinks.Elasticsearch() && f.ESURL == "" {
		errs = append(errs, errors.New("no --es-url: a topology keeps a search index"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	s := &services{}
	if s.kafka, err = connectKafka(ctx, f.Kafka); err != nil {
		return nil, nil, err
	}
	if sinks.Redis {
		if s.redis, err = connect.Redis(ctx, "--redis-addr", f.RedisAddr, svc.redis); err != nil {
			s.close()
			return nil, nil, err
		}
	}
	if sinks.Elasticsearch() {
		if s.es, _, err = connect.Elasticsearch(ctx, "--es-url", f.ESURL, svc.es); err != nil {
			s.close()
			return nil, nil, err
		}
	}
	return topos, s, nil
}

// pick returns the topologies named names, all of them when names is
// empty.
func pick(topos []*topologies.Topology, names []string) ([]*topologies.Topology, error) {
	if len(names) == 0 {
		return topos, nil
	}
	byName := map[string]*topologies.Topology{}
	var all []string
	for _, t := range topos {
		byName[t.Name] = t
		all = append(all, t.Name)
	}
	var out []*topologies.Topology
	for _, n := range names {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("no topology %s: the topologies are %s", n, strings.Join(all, ", "))
		}
		out = append(out, t)
	}
	return out, nil
}

// tableSource reads the rows of the table a change topic under prefix
// carries, each table once.
type tableSource struct {
	rows   *capture.Rows
	prefix string
	read   map[string][]engine.CurrentRow
}

func (s *tableSource) Rows(ctx context.Context, topic string) ([]engine.CurrentRow, error) {
	if rows, ok := s.read[topic]; ok {
		return rows, nil
	}
	rest, ok := strings.CutPrefix(topic, s.prefix+".")
	schema, table, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return nil, fmt.Errorf("topic %s is not a change topic under --topic-prefix %s (<prefix>.<schema>.<table>)", topic, s.prefix)
	}
	var rows []engine.CurrentRow
	err := s.rows.Read(ctx, schema, table, func(key, row change.Row) error {
		rows = append(rows, engine.CurrentRow{Key: key, Row: row})
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.read[topic] = rows
	return rows, nil
}

func writeVerifyJSON(w io.Writer, results []verify.Result, behind []string) error {
	for i := range results {
		if results[i].Differences == nil {
			results[i].Differences = []verify.Difference{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Results []verify.Result `json:"results"`
		Behind  []string        `json:"behind,omitempty"`
	}{results, behind})
}

// writeVerifyText writes a table of the nodes verified, then each node's
// differences, and a last line: verify: ok, or how many differences.
func writeVerifyText(w io.Writer, results []verify.Result, behind []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPOLOGY\tNODE\tSINK\tCOMPARED\tRESULT")
	differences, unverifiable := 0, 0
	for _, r := range results {
		result, compared := "ok", fmt.Sprint(r.Compared)
		switch {
		case r.Unverifiable != "":
			result, compared = "not verifiable: "+r.Unverifiable, "-"
			unverifiable++
		case len(r.Differences) > 0:
			result = plural(len(r.Differences), "difference")
		}
		differences += len(r.Differences)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Topology, r.Node, r.Sink, compared, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if len(r.Differences) == 0 && len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s, %s (%s):\n", r.Topology, r.Node, r.Sink)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		for i, d := range r.Differences {
			if i == shownDifferences {
				fmt.Fprintf(w, "  ... and %d more (--json lists every one)\n", len(r.Differences)-i)
				break
			}
			key := d.Key
			if d.Field != "" {
				key += " " + d.Field
			}
			fmt.Fprintf(w, "  %s: source %s, sink %s\n", key, orNone(d.Source), orNone(d.Sink))
		}
	}
	fmt.Fprintln(w)
	if len(behind) > 0 {
		fmt.Fprintf(w, "note: consumer groups still have changes to apply, which may show as differences: %s\n", strings.Join(behind, ", "))
	}
	var err error
	switch {
	case differences == 1:
		_, err = fmt.Fprintln(w, "verify: 1 difference")
	case differences > 1:
		_, err = fmt.Fprintf(w, "verify: %d differences\n", differences)
	case unverifiable > 0:
		_, err = fmt.Fprintf(w, "verify: ok (%s not verifiable from current rows)\n", plural(unverifiable, "node"))
	default:
		_, err = fmt.Fprintln(w, "verify: ok")
	}
	return err
}

// plural says n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
