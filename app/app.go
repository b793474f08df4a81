package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/redact"
	"github.com/cdcflow/cdcflow/topologies"
	"golang.org/x/term"
)

// Source is where a topology's tables were captured: the topic prefix
// capture publishes under (--topic-prefix) and the PostgreSQL schema of the
// tables (--schema).
type Source struct {
	Prefix, Schema string
}

// Table declares the table name of the source, read as rows of type T.
func Table[T any](src Source, name string) topologies.Table[T] {
	return topologies.TableOf[T](src.Prefix, src.Schema, name)
}

// TopologyFunc declares a topology over the tables of src. It must do no
// I/O: it runs before anything connects.
type TopologyFunc func(src Source) *topologies.Topology

// Main parses the command line and the environment into [Flags] and runs
// the command it names with the topologies fns declare, then exits: with
// status 0 when the command succeeded, 1 after printing one line that names
// what went wrong (or, for status and verify, after the report that shows
// it). It never returns. The commands:
//
//	run      run the topologies until SIGTERM or SIGINT (the default: a
//	         binary given no command runs)
//	status   the replication slot and the capture checkpoint (with
//	         --pg-dsn), each consumer group's lag, the topics and the dead
//	         letters; exit 1 when the slot is inactive or a lag exceeds
//	         --max-lag
//	verify   compare what the sinks hold with what the source tables'
//	         current rows make, key by key; exit 1 on a difference
//	reset    delete what a topology keeps (consumer groups, table topics,
//	         Redis keys, search indexes) so that its next run rebuilds it
//	         from the start of its inputs
func Main(fns ...TopologyFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, filepath.Base(os.Args[0]), os.Args[1:], stdin{os.Stdin, isTerminal(os.Stdin)}, os.Stdout, os.Stderr, fns)
	stop()
	os.Exit(code)
}

// cli is a processor binary's command line: the settings every command
// shares, and the commands.
type cli struct {
	Flags

	Run    runCmd    `cmd:"" default:"1" help:"Run the topologies until SIGTERM or SIGINT (the default command)."`
	Status statusCmd `cmd:"" help:"Print the replication slot and capture checkpoint (with --pg-dsn), each consumer group's lag, the topics and the dead letters; exit 1 when the slot is inactive or a lag exceeds --max-lag."`
	Verify verifyCmd `cmd:"" help:"Compare what the topologies' sinks hold with what the source tables' current rows make, key by key; exit 1 on a difference."`
	Reset  resetCmd  `cmd:"" help:"Delete what topologies keep (consumer groups, table topics, Redis keys, search indexes), so that their next run rebuilds it from the start of their inputs."`
}

// env is what every command runs with.
type env struct {
	flags  *Flags
	fns    []TopologyFunc
	log    *slog.Logger
	stdin  stdin
	stdout io.Writer
}

// runCmd runs the topologies.
type runCmd struct{}

func (runCmd) Run(ctx context.Context, e *env) error { return Run(ctx, *e.flags, e.log, e.fns...) }

// errReported is a command's failure that its output already shows (an
// unhealthy status, a difference found by verify): the binary exits 1
// without another line.
var errReported = errors.New("reported")

// stdin is a binary's input, and whether it is a terminal someone can
// answer a question on.
type stdin struct {
	io.Reader
	terminal bool
}

// run is Main on args and streams of its own; it returns the exit status.
func run(ctx context.Context, name string, args []string, in stdin, stdout, stderr io.Writer, fns []TopologyFunc) int {
	// Until the flags are parsed, only URL passwords can be told apart.
	secrets := &redact.Secrets{}
	errw := secrets.Writer(stderr)
	var c cli
	kctx, err := parseFlags(&c, name, args, stdout, errw, topologyNames(fns))
	if err != nil {
		if errors.Is(err, ErrHelp) {
			return 0
		}
		PrintError(errw, name, err)
		return 1
	}
	redact.Collect(reflect.ValueOf(&c).Elem(), secrets)
	log := slog.New(secrets.Handler(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: c.LogLevel})))
	redact.RouteLibraryLogs(log, errw)
	e := &env{flags: &c.Flags, fns: fns, log: log, stdin: in, stdout: secrets.Writer(stdout)}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(e); err != nil {
		if !errors.Is(err, errReported) {
			PrintError(errw, name, secrets.Error(err))
		}
		return 1
	}
	return 0
}

// isTerminal tells whether f is a terminal (not merely a character
// device, as /dev/null is).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// topologyNames lists the names of the topologies fns declare, for help:
// declared over an empty Source, since the flags are not parsed yet (a
// function that fails on it is left out; declare reports it later).
func topologyNames(fns []TopologyFunc) string {
	var names []string
	for _, fn := range fns {
		func() {
			defer func() { recover() }()
			if t := fn(Source{}); t != nil {
				names = append(names, t.Name)
			}
		}()
	}
	return strings.Join(names, ", ")
}

// parseFlags parses args, the environment and, when --config names one, a
// YAML file into c, and returns the command to run (see ParseCommandLine).
// topologies lists the names of the binary's topologies, for help.
func parseFlags(c *cli, name string, args []string, stdout, stderr io.Writer, topologies string) (*kong.Context, error) {
	return ParseCommandLine(c, args, stdout, stderr,
		kong.Name(name),
		kong.Vars{"topologies": topologies},
		kong.Description("A cdcflow processor: runs its topologies on the change topics capture publishes (run, the default), and reports on them (status, verify) or rebuilds them (reset)."))
}

// topologies declares the topologies of fns over src, each validated, their
// names unique.
func declare(src Source, fns []TopologyFunc) ([]*topologies.Topology, error) {
	if len(fns) == 0 {
		return nil, errors.New("no topologies: pass the topology functions to app.Main")
	}
	var errs []error
	seen := map[string]bool{}
	var topos []*topologies.Topology
	for i, fn := range fns {
		if fn == nil {
			errs = append(errs, fmt.Errorf("topology function %d is nil", i))
			continue
		}
		t := fn(src)
		if t == nil {
			errs = append(errs, fmt.Errorf("topology function %d returned nil", i))
			continue
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("two topologies are named %s; each runs as a consumer group of its name", t.Name))
		}
		seen[t.Name] = true
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
		topos = append(topos, t)
	}
	return topos, errors.Join(errs...)
}

// sinksOf returns what the topologies write to besides Kafka.
func sinksOf(topos []*topologies.Topology) engine.Sinks {
	var all []engine.Node
	for _, t := range topos {
		all = append(all, t.Engine()...)
	}
	return engine.SinksOf(all)
}
