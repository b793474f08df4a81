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

var grammar = []kong.Option{kong.Vars{"default_tables": "public.orders"}}

// TestHelpListsEveryFlag: orders-demo --help, run --help and loadgen --help
// list every flag with its environment variable, and docs/running.md names
// every flag.
func TestHelpListsEveryFlag(t *testing.T) {
	clitest.CheckHelpAndDocs(t, runCLI, "../../../../docs/running.md", &cli{}, grammar...)
}

// TestCommandLineMistakesAreOneLine: a bad flag, value or config file ends
// orders-demo with one line that names it, and exit 1.
func TestCommandLineMistakesAreOneLine(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("rates: 5\n"), 0o644)
	clitest.CheckMistakes(t, "orders-demo", runCLI, []clitest.Mistake{
		{Name: "an unknown flag", Args: []string{"--bogus"}, Says: "unknown flag --bogus"},
		{Name: "a bad number", Args: []string{"loadgen", "--count", "x"}, Says: `--count: expected a valid 64 bit int but got "x"`},
		{Name: "a bad rate", Args: []string{"--rate", "fast"}, Says: "--rate"},
		{Name: "a config key that is no flag", Args: []string{"--config", unknownKey}, Says: "unknown setting rates"},
		{Name: "a config file that does not exist", Args: []string{"--config", filepath.Join(dir, "none.yaml")}, Says: "none.yaml: no such file"},
	})
}
