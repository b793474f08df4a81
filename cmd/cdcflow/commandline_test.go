package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/cdcflow/cdcflow/internal/clitest"
)

func runCLI(args []string, stdout, stderr io.Writer) int {
	return run(context.Background(), args, stdout, stderr)
}

var grammar = []kong.Option{kong.Vars{"default_tables": ""}}

// TestHelpListsEveryFlag: cdcflow --help, capture --help and status --help
// exit 0 and list every flag with its environment variable, and
// docs/running.md names every flag.
func TestHelpListsEveryFlag(t *testing.T) {
	clitest.CheckHelpAndDocs(t, runCLI, "../../docs/running.md", &cli{}, grammar...)
}

// TestCommandLineMistakesAreOneLine: a bad flag, value, command or config
// file ends cdcflow with one line that names it, and exit 1.
func TestCommandLineMistakesAreOneLine(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("pg-dsn: postgres://u@127.0.0.1:1/db\nslots: cdcflow\n"), 0o644)
	notYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(notYAML, []byte("tables: [unclosed\n"), 0o644)
	clitest.CheckMistakes(t, "cdcflow", runCLI, []clitest.Mistake{
		{Name: "no command", Args: nil, Says: `expected one of "capture", "status"`},
		{Name: "a misspelt command", Args: []string{"captuer"}, Says: `did you mean "capture"`},
		{Name: "an unknown flag", Args: []string{"capture", "--bogus"}, Says: "unknown flag --bogus"},
		{Name: "a bad duration", Args: []string{"capture", "--status-interval", "abc"}, Says: `--status-interval: expected duration but got "abc"`},
		{Name: "a bad snapshot mode", Args: []string{"capture", "--tables", "public.t", "--snapshot-mode", "sometimes"}, Says: `snapshot mode "sometimes" is unknown: set --snapshot-mode`},
		{Name: "a bad lag threshold", Args: []string{"status", "--max-lag", "10x"}, Says: `--max-lag: "10x" is neither a number of records (10000) nor a duration (30s)`},
		{Name: "a bad table pattern", Args: []string{"capture", "--tables", "public.Bad Name"}, Says: `"public.Bad Name" is not`},
		{Name: "a config key that is no flag", Args: []string{"capture", "--config", unknownKey}, Says: "unknown setting slots"},
		{Name: "a config file that is not YAML", Args: []string{"capture", "--config", notYAML}, Says: "is not YAML"},
		{Name: "a config file that does not exist", Args: []string{"capture", "--config", filepath.Join(dir, "none.yaml")}, Says: "none.yaml: no such file"},
	})
}
