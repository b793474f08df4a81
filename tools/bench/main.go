// Command bench measures cdcflow next to its baselines, every scenario in
// one run against the real services (see internal/bench), and writes the
// figures as JSON and, with --markdown, as BENCHMARKS.md. scripts/bench runs
// it: the smoke form in CI, --full for the figures BENCHMARKS.md holds.
//
//	bench [--full] [--json FILE] [--markdown FILE] --cdcflow BIN
//	bench --render FILE.json --markdown FILE     (Markdown of an earlier run)
//	bench process --topology NAME --stem STEM   (a processor child process)
//
// It exits 1 when a scenario failed or capture's peak RSS exceeded its
// bound. The services are taken from the CDCFLOW_* environment variables
// that `scripts/services env` sets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/internal/bench"
	"github.com/cdcflow/cdcflow/processors/redismetrics"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// workload is the orders example: its metrics topology (Redis) and its
// order summaries read model.
var workload = bench.Workload{
	Setup: func(schema string) []string {
		return []string{orders.CreateTable(schema), orders.CreateCustomersTable(schema), orders.CreateOrderItemsTable(schema)}
	},
	Tables: []string{"orders", "customers", "order_items"},
	Fill: func(schema string, n int) string {
		return fmt.Sprintf(`INSERT INTO %s.orders (customer_id, status, amount, created_at)
SELECT g %% 500, (ARRAY['new', 'paid', 'shipped'])[1 + g %% 3], 1 + (g %% 10000) / 100.0, now() - (g %% 1440) * interval '1 minute'
FROM generate_series(1, %d) g`, schema, n)
	},
	Probe: func(schema string, i int) string {
		return fmt.Sprintf("INSERT INTO %s.orders (customer_id, amount) VALUES (%d, 1.00)", schema, probeCustomer(i))
	},
	Visible: func(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, ids []int) ([]bool, error) {
		key := redismetrics.New(rdb, keyPrefix).SeriesKey(orders.MetricsTopology, orders.TopCustomers)
		pipe := rdb.Pipeline()
		cmds := make([]*redis.FloatCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.ZScore(ctx, key, strconv.Itoa(probeCustomer(id)))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		seen := make([]bool, len(ids))
		for i, c := range cmds {
			seen[i] = c.Err() == nil
		}
		return seen, nil
	},
	Topologies: []bench.Topology{
		{Name: "metrics", New: orders.Metrics, PerChange: 3}, // Metrics and two Windowed nodes
		{Name: "summaries", New: func(prefix, schema string) *topologies.Topology { return orders.Summaries(prefix, schema, "") }, PerChange: 1},
	},
}

// probeCustomer is probe i's customer: one of its own, ranked in the
// top-customers series once the probe's order is counted.
func probeCustomer(i int) int { return 1_000_000 + i }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	level := &slog.LevelVar{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	brokers := strings.Split(os.Getenv("CDCFLOW_KAFKA_BROKERS"), ",")
	if len(args) > 0 && args[0] == "process" {
		fs := flag.NewFlagSet("process", flag.ContinueOnError)
		name := fs.String("topology", "", "the workload's topology to run")
		stem := fs.String("stem", "", "schema, topic prefix, group and key prefix")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		i := slices.IndexFunc(workload.Topologies, func(t bench.Topology) bool { return t.Name == *name })
		if i < 0 {
			return fmt.Errorf("no topology %q in the workload", *name)
		}
		return bench.RunProcessor(ctx, bench.ProcessorArgs{Topology: workload.Topologies[i], Stem: *stem, Brokers: brokers,
			RegistryURL: os.Getenv("CDCFLOW_REGISTRY_URL"), RedisAddr: os.Getenv("CDCFLOW_REDIS_ADDR")}, os.Stdout, log)
	}

	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	full := fs.Bool("full", false, "the full sizes (issue 10's), not the smoke form's")
	jsonOut := fs.String("json", "", "write the results as JSON here")
	mdOut := fs.String("markdown", "", "write the results as Markdown (BENCHMARKS.md) here")
	note := fs.String("note", "", "a paragraph the Markdown says under the machine")
	captureBin := fs.String("cdcflow", "", "the built cdcflow binary (go build ./cmd/cdcflow)")
	debug := fs.Bool("debug", false, "log at debug level (each end-to-end probe's latency)")
	only := fs.String("only", "", "comma-separated scenarios to run alone: capture-bulk, capture-oltp, snapshot, processing, memory")
	pgBin := fs.String("pg-bin", "", "directory of pg_recvlogical and pgbench (default: the newest /usr/lib/postgresql/*/bin)")
	render := fs.String("render", "", "run nothing: render this JSON of an earlier run as Markdown (to --markdown)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *render != "" {
		res, err := bench.ReadJSON(*render)
		if err != nil {
			return err
		}
		return report(res, "", *mdOut, nil)
	}
	if *pgBin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(dirs, func(a, b string) int { return versionOf(a) - versionOf(b) })
		if len(dirs) == 0 {
			return errors.New("no /usr/lib/postgresql/*/bin: install postgresql-client (pg_recvlogical, pgbench) or set --pg-bin")
		}
		*pgBin = dirs[len(dirs)-1]
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sizes := bench.Smoke
	if *full {
		sizes = bench.Full
	}
	cfg := bench.Config{
		PGDSN: os.Getenv("CDCFLOW_PG_DSN"), Brokers: brokers, RegistryURL: os.Getenv("CDCFLOW_REGISTRY_URL"),
		RedisAddr: os.Getenv("CDCFLOW_REDIS_ADDR"), Capture: *captureBin, Self: self, PGBin: *pgBin,
		Sizes: sizes, Workload: workload, Log: log,
	}
	if *debug {
		level.Set(slog.LevelDebug)
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	res, runErr := bench.Run(ctx, cfg)
	if res == nil {
		return runErr
	}
	if db, err := pgx.Connect(ctx, cfg.PGDSN); err == nil {
		var v string
		if db.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			res.SetPostgres(v)
		}
		db.Close(ctx)
	}
	res.Machine.Go, res.Machine.Commit = bench.GoVersion(), bench.Commit()
	res.Note = *note
	return report(res, *jsonOut, *mdOut, runErr)
}

// report writes the results as JSON and Markdown where asked, and prints
// the Markdown; it returns runErr, or an error listing the failed scenarios.
func report(res *bench.Results, jsonOut, mdOut string, runErr error) error {
	if jsonOut != "" {
		if err := res.WriteJSON(jsonOut); err != nil {
			return err
		}
	}
	md, err := res.Markdown()
	if err != nil {
		return err
	}
	if mdOut != "" {
		if err := os.WriteFile(mdOut, md, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%s", md)
	if res.Ran > 0 { // the closing line CI reads
		fmt.Printf("\nbench: %d passed, %d failed\n", res.Ran-len(res.Failed), len(res.Failed))
	}
	if runErr != nil {
		return runErr
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d scenarios failed:\n%s", len(res.Failed), strings.Join(res.Failed, "\n"))
	}
	return nil
}

// versionOf is the major version of /usr/lib/postgresql/<version>/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}
