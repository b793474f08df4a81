// Command cdcflow captures PostgreSQL changes to Kafka, and reports on it.
//
//	cdcflow capture  capture the tables of --tables to Kafka (Kafka and the
//	                 schema registry in-process unless --kafka-brokers and
//	                 --registry-url name them)
//	cdcflow status   the replication slot, capture's checkpoint, the lag of
//	                 consumer groups (--group, or those --group-prefix
//	                 selects), the topics under --topic-prefix and the
//	                 dead letters; exit 1 when the slot is inactive or a lag
//	                 exceeds --max-lag
//
// Processors are binaries of their own, built from topology functions with
// package app in a ten-line main.go (see the README, "Run your topology");
// they have status, verify and reset commands of their own, which know the
// topologies' consumer groups and sinks.
// Every flag has an environment variable; see cdcflow --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/redact"
)

type cli struct {
	LogLevel slog.Level `help:"Log level: debug, info, warn, error." default:"info" env:"CDCFLOW_LOG_LEVEL"`
	Config   string     `name:"config" type:"existingfile" help:"YAML file of settings, keyed by flag name (pg-dsn: ..., tables: [...]); flags and environment variables override it." env:"CDCFLOW_CONFIG"`

	Capture captureCmd `cmd:"" help:"Capture changes from PostgreSQL to Kafka."`
	Status  statusCmd  `cmd:"" help:"Print the replication slot, capture's checkpoint, the lag of consumer groups, the topics and the dead letters; exit 1 when the slot is inactive or a lag exceeds --max-lag."`
}

type captureCmd struct {
	app.CaptureFlags
	PprofAddr string `name:"pprof-addr" help:"Serve Go's profiles (net/http/pprof, /debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty. Anyone who reaches it can read the process's memory profiles: bind it to localhost." env:"CDCFLOW_PPROF_ADDR"`
}

func (c *captureCmd) Run(ctx context.Context, log *slog.Logger) error {
	tuneGC()
	if c.PprofAddr != "" {
		stop, err := servePprof(c.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return app.RunCapture(ctx, c.CaptureFlags, log)
}

// The garbage collector's settings of capture, unless the environment's
// GOGC and GOMEMLIMIT say otherwise. Capture allocates for every row and
// keeps little: at Go's default GOGC=100 it spent a quarter of its CPU
// collecting through a 2M-row transaction; at 200 it collects half as
// often (BenchmarkLargeTransaction: 10.9 -> 7.7 us of CPU per row), and the
// soft memory limit keeps its heap within the 128 MiB capture is held to.
const (
	captureGCPercent   = 200
	captureMemoryLimit = 96 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(captureGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(captureMemoryLimit)
	}
}

// servePprof serves net/http/pprof's handlers on addr, on a listener and
// mux of their own (not http.DefaultServeMux), until stop is called.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --pprof-addr %s: %w; pick a free address", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", "err", err)
		}
	}()
	log.Info("serving profiles", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { srv.Close() }, nil
}

type statusCmd struct {
	app.StatusFlags
}

func (c *statusCmd) Run(ctx context.Context, stdout io.Writer) error {
	return app.RunStatus(ctx, c.StatusFlags, stdout)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main on args and streams of its own; it returns the exit status:
// 0, or 1 after one line that names what went wrong (or after the status
// report that shows it).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	// Until the flags are parsed, only URL passwords can be told apart.
	secrets := &redact.Secrets{}
	errw := secrets.Writer(stderr)
	kctx, err := app.ParseCommandLine(&c, args, stdout, errw, kong.Name("cdcflow"),
		kong.Description("cdcflow: PostgreSQL changes to Kafka, and stream processing on them."),
		kong.Vars{"default_tables": ""},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.BindTo(secrets.Writer(stdout), (*io.Writer)(nil)))
	if err != nil {
		if errors.Is(err, app.ErrHelp) {
			return 0
		}
		app.PrintError(errw, "cdcflow", secrets.Error(err))
		return 1
	}
	redact.Collect(reflect.ValueOf(&c).Elem(), secrets)
	log := slog.New(secrets.Handler(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: c.LogLevel})))
	redact.RouteLibraryLogs(log, errw)
	if err := kctx.Run(log); err != nil {
		if !errors.Is(err, app.ErrUnhealthy) { // the report says why
			app.PrintError(errw, "cdcflow", secrets.Error(err))
		}
		return 1
	}
	return 0
}
