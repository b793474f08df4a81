package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// Sizes are the sizes of the scenarios' workloads.
type Sizes struct {
	BulkInsert  int `json:"bulk_insert_rows"`  // rows of the bulk workload's INSERT
	BulkUpdate  int `json:"bulk_update_rows"`  // rows of its UPDATE
	OLTP        int `json:"oltp_transactions"` // single-row transactions pgbench commits
	OLTPClients int `json:"oltp_clients"`
	Snapshot    int `json:"snapshot_rows"`   // rows of the snapshotted table
	Processing  int `json:"processing_rows"` // change records on the processed topic
	EndToEnd    int `json:"end_to_end_s"`    // seconds of load of the end-to-end scenario
	LargeTx     int `json:"large_tx_rows"`   // rows of the memory scenario's transaction
	RSSBoundMiB int `json:"rss_bound_mib"`   // capture's peak RSS above which the run fails
	RSSTarget   int `json:"rss_target_mib"`  // the target capture's peak RSS should stay under
}

// Smoke are the sizes of the CI form: every scenario, in a few minutes.
var Smoke = Sizes{BulkInsert: 100_000, BulkUpdate: 50_000, OLTP: 10_000, OLTPClients: 4, Snapshot: 200_000,
	Processing: 10_000, EndToEnd: 5, LargeTx: 300_000, RSSBoundMiB: 256, RSSTarget: 128}

// Full are the sizes issue 10 names. It names none for processing and the
// end-to-end load: 20,000 changes and 10s, as the order-metrics topology
// keeps about 3.6 KB of row and window state in Redis per order, and the
// shared test Redis holds 256 MiB at most (200,000 orders ran it out of
// memory, and so did 30,000 then 30s of end-to-end load at 2,300/s).
var Full = Sizes{BulkInsert: 1_000_000, BulkUpdate: 500_000, OLTP: 200_000, OLTPClients: 4, Snapshot: 2_000_000,
	Processing: 20_000, EndToEnd: 10, LargeTx: 2_000_000, RSSBoundMiB: 256, RSSTarget: 128}

// Workload is the application whose topologies the processing and end-to-end
// scenarios run: its tables (created in a schema of the bench's own), how to
// fill its main table, and its topologies.
type Workload struct {
	// Setup returns the statements that create the tables in schema.
	Setup func(schema string) []string
	// Tables are the tables capture captures, unqualified; Tables[0] is
	// the one Fill fills and the bare consumer reads.
	Tables []string
	// Fill returns a statement inserting n rows into schema.Tables[0].
	Fill func(schema string, n int) string
	// Probe returns a statement inserting one row into schema.Tables[0]
	// that the metric Visible checks becomes visible, for probe i.
	Probe func(schema string, i int) string
	// Visible reports, for each probe of ids, whether its row is counted in
	// Redis by the first topology, where keyPrefix prefixes the processor's
	// keys.
	Visible func(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, ids []int) ([]bool, error)
	// Topologies are the topologies measured, with how many times each
	// counts one change in its processor's Stats.Changes. The first is
	// the one the end-to-end scenario runs.
	Topologies []Topology
}

// Topology is one topology of a [Workload].
type Topology struct {
	Name      string
	New       func(prefix, schema string) *topologies.Topology
	PerChange int
}

// Config is what a run needs: the services, the binaries and the sizes.
type Config struct {
	PGDSN       string
	Brokers     []string
	RegistryURL string
	RedisAddr   string
	// Capture is the built cdcflow binary; Self the bench binary (it runs
	// the processors as child processes of its own, see [RunProcessor]).
	Capture, Self string
	// PGBin is the directory of pg_recvlogical and pgbench.
	PGBin    string
	Sizes    Sizes
	Workload Workload
	// Only, when not empty, names the scenarios to run (capture-bulk,
	// capture-oltp, snapshot, processing (with end-to-end), memory).
	Only []string
	Log  *slog.Logger
}

func (c Config) validate() error {
	var errs []error
	for name, v := range map[string]string{"PGDSN": c.PGDSN, "RegistryURL": c.RegistryURL, "RedisAddr": c.RedisAddr, "Capture": c.Capture, "Self": c.Self, "PGBin": c.PGBin} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", name))
		}
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty"))
	}
	if len(c.Workload.Topologies) == 0 || len(c.Workload.Tables) == 0 {
		errs = append(errs, errors.New("the workload has no tables or no topologies"))
	}
	return errors.Join(errs...)
}

// Bench runs the scenarios.
type Bench struct {
	cfg   Config
	log   *slog.Logger
	res   *Results
	stems []string // the names the scenarios made things under
}

// Run runs every scenario in turn, each next to its baseline, and returns
// the results. A scenario that fails is recorded with its error and the
// others still run; Results.Failed lists them.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &Bench{cfg: cfg, log: cfg.Log, res: newResults(cfg.Sizes)}
	scenarios := []struct {
		name string
		run  func(context.Context) error
	}{
		{"capture-bulk", b.captureBulk},
		{"capture-oltp", b.captureOLTP},
		{"snapshot", b.snapshot},
		{"processing", b.processing},
		{"memory", b.memory},
	}
	for _, s := range scenarios {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, s.name) {
			continue
		}
		b.res.Ran++
		b.log.Info("scenario", "name", s.name)
		start := time.Now()
		if err := s.run(ctx); err != nil {
			b.log.Error("scenario failed", "name", s.name, "err", err)
			b.res.Failed = append(b.res.Failed, fmt.Sprintf("%s: %v", s.name, err))
		}
		b.log.Info("scenario done", "name", s.name, "took", time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			return b.res, ctx.Err()
		}
	}
	b.res.Machine.Load[1] = loadAverage()
	return b.res, nil
}

// stem returns a fresh name for a scenario's slot, publication, table,
// topics, groups and keys.
func (b *Bench) stem(scenario string) string {
	st := fmt.Sprintf("bench_%s_%d", scenario, rand.IntN(1_000_000_000))
	b.stems = append(b.stems, st)
	return st
}

func (b *Bench) env() []string {
	return append(os.Environ(), "CDCFLOW_PG_DSN="+b.cfg.PGDSN, "CDCFLOW_KAFKA_BROKERS="+strings.Join(b.cfg.Brokers, ","),
		"CDCFLOW_REGISTRY_URL="+b.cfg.RegistryURL, "CDCFLOW_REDIS_ADDR="+b.cfg.RedisAddr)
}

// Marks of capture's log.
const (
	markStreaming = `msg="capture streaming"`
	markSnapshot  = `msg="snapshot needed"`
)

// startCapture runs the cdcflow binary's capture of schema.tables under
// slot, publication and topic prefix stem.
func (b *Bench) startCapture(stem, schema string, tables []string, extra ...string) (*process, error) {
	qualified := make([]string, len(tables))
	for i, t := range tables {
		qualified[i] = schema + "." + t
	}
	args := append([]string{"capture", "--tables", strings.Join(qualified, ","), "--slot", stem, "--publication", stem,
		"--topic-prefix", stem, "--table-refresh-interval", "0"}, extra...)
	return startProcess(b.env(), []string{markStreaming, markSnapshot}, nil, b.cfg.Capture, args...)
}

// commitMarked runs statements in one transaction and returns an LSN the
// transaction's commit record follows: a capture checkpoint at or past it
// (see waitCheckpoint) has published the transaction and all before it.
func commitMarked(ctx context.Context, db *pgx.Conn, statements ...string) (change.LSN, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	for _, s := range statements {
		if _, err := tx.Exec(ctx, s); err != nil {
			return 0, fmt.Errorf("%.80s: %w", s, err)
		}
	}
	var lsn string
	if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return 0, err
	}
	at, err := change.ParseLSN(lsn)
	if err != nil {
		return 0, err
	}
	return at, tx.Commit(ctx)
}

// waitCheckpoint waits until the capture of stem committed to Kafka the end
// of a source transaction that commits at or after lsn, and returns when it
// saw that.
func (b *Bench) waitCheckpoint(ctx context.Context, capture *process, stem string, lsn change.LSN, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		ckpt, found, err := readCheckpoint(ctx, b.cfg.Brokers, stem)
		if err != nil {
			return time.Time{}, err
		}
		if found && ckpt.Position.Index == ^uint32(0) && ckpt.Position.CommitLSN >= lsn {
			return time.Now(), nil
		}
		if capture.exited() {
			return time.Time{}, capture.exitedError("publishing the workload")
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("capture did not publish up to %s within %v; checkpoint %+v", lsn, timeout, ckpt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup drops what a scenario made under stem: the slots, publications,
// the statements' objects, the topics and consumer groups whose names start
// with stem, the registry subjects whose names start with it, and the Redis
// keys under stem. It logs what it could not drop.
func (b *Bench) cleanup(stem string, slots, publications []string, drop ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	warn := func(what string, err error) {
		if err != nil {
			b.log.Warn("cleanup", "what", what, "err", err)
		}
	}
	db, err := pgx.Connect(ctx, b.cfg.PGDSN)
	if err != nil {
		warn("connect to PostgreSQL", err)
	} else {
		defer db.Close(ctx)
		for _, slot := range slots {
			warn("slot "+slot, dropSlot(ctx, db, slot))
		}
		for _, pub := range publications {
			_, err := db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize())
			warn("publication "+pub, err)
		}
		for _, s := range drop {
			_, err := db.Exec(ctx, s)
			warn(s, err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.cfg.Brokers...))
	if err != nil {
		warn("kafka client", err)
	} else {
		defer cl.Close()
		adm := kadm.NewClient(cl)
		if groups, err := adm.ListGroups(ctx); err != nil {
			warn("list groups", err)
		} else {
			if mine := withPrefix(groups.Groups(), stem); len(mine) > 0 {
				_, err := adm.DeleteGroups(ctx, mine...)
				warn("groups", err)
			}
		}
		if topics, err := adm.ListTopics(ctx); err != nil {
			warn("list topics", err)
		} else {
			if mine := withPrefix(topics.Names(), stem); len(mine) > 0 {
				_, err := adm.DeleteTopics(ctx, mine...)
				warn("topics", err)
			}
		}
	}
	if reg, err := sr.NewClient(sr.URLs(b.cfg.RegistryURL)); err != nil {
		warn("registry client", err)
	} else if subjects, err := reg.Subjects(ctx); err != nil {
		warn("list subjects", err)
	} else {
		for _, s := range withPrefix(subjects, stem) {
			_, err := reg.DeleteSubject(ctx, s, sr.SoftDelete)
			if err == nil {
				_, err = reg.DeleteSubject(ctx, s, sr.HardDelete)
			}
			warn("subject "+s, err)
		}
	}
	warn("redis keys", b.dropRedisKeys(ctx, stem))
}

// dropRedisKeys deletes the Redis keys under stem.
func (b *Bench) dropRedisKeys(ctx context.Context, stem string) error {
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr})
	defer rdb.Close()
	iter := rdb.Scan(ctx, 0, stem+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// dropSlot drops a replication slot once no connection holds it (a stopped
// walsender may hold it a moment longer); a slot that does not exist is no
// error.
func dropSlot(ctx context.Context, db *pgx.Conn, slot string) error {
	exists, err := waitInactive(ctx, db, slot)
	if err != nil || !exists {
		return err
	}
	_, err = db.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
	return err
}

// waitInactive waits up to 30s until no connection holds slot, and reports
// whether it exists.
func waitInactive(ctx context.Context, db *pgx.Conn, slot string) (bool, error) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var active bool
		err := db.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !active || time.Now().After(deadline) {
			return true, nil
		}
	}
}

// withPrefix returns the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// withTable runs a scenario on a table of its own in schema public, named
// after a fresh stem, and cleans up after it: the table, and the slots and
// publications named stem and stem+suffix for each of suffixes.
func (b *Bench) withTable(ctx context.Context, scenario string, suffixes []string, run func(st string, db *pgx.Conn) error) error {
	st := b.stem(scenario)
	names := []string{st}
	for _, s := range suffixes {
		names = append(names, st+s)
	}
	defer b.cleanup(st, names, names, "DROP TABLE IF EXISTS "+st)
	db, err := pgx.Connect(ctx, b.cfg.PGDSN)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(ctx, "CREATE TABLE "+st+" (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL, note text)"); err != nil {
		return err
	}
	return run(st, db)
}

// insertRows returns a statement inserting n rows into a table withTable
// made.
func insertRows(table string, n int) string {
	return fmt.Sprintf("INSERT INTO %s (customer, amount, note) SELECT g %% 1000, (g %% 10000) / 100.0, md5(g::text) FROM generate_series(1, %d) g", table, n)
}
