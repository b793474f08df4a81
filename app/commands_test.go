package app

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/cdcflow/cdcflow/internal/clitest"
)

// TestCommandLineMistakesAreOneLine: a bad flag, a bad value, a bad config
// file or a command used wrong ends the binary with exit status 1 and one
// line that names the mistake, whatever the command, before anything
// connects.
func TestCommandLineMistakesAreOneLine(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("kafka-brokers: [127.0.0.1:1]\nmax-lags: 10\n"), 0o644)
	notYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(notYAML, []byte("kafka-brokers: [unclosed\n"), 0o644)
	clearEnv(t)
	runCLI := func(args []string, stdout, stderr io.Writer) int {
		return run(context.Background(), "accounts", args, stdin{}, stdout, stderr, []TopologyFunc{searchAccounts})
	}
	clitest.CheckMistakes(t, "accounts", runCLI, []clitest.Mistake{
		{Name: "an unknown flag", Args: []string{"--bogus"}, Says: "unknown flag --bogus"},
		{Name: "an unknown flag of a command", Args: []string{"status", "--bogus"}, Says: "unknown flag --bogus"},
		{Name: "a misspelt command", Args: []string{"stauts"}, Says: `did you mean "status"`},
		{Name: "a lag that is neither records nor an age", Args: []string{"status", "--max-lag", "10x"}, Says: `--max-lag: "10x" is neither a number of records (10000) nor a duration (30s)`},
		{Name: "verify without the source", Args: []string{"verify"}, Says: "no --pg-dsn: verify compares the sinks with the rows of the captured database"},
		{Name: "verify of masked columns without their salt", Args: []string{"verify", "--pg-dsn", "postgres://x@127.0.0.1:1/x", "--mask-columns", "public.accounts.email"}, Says: "--mask-columns needs the --mask-salt (CDCFLOW_MASK_SALT) capture runs with"},
		{Name: "verify of a topology the binary lacks", Args: []string{"verify", "--pg-dsn", "postgres://x@127.0.0.1:1/x", "nosuch"}, Says: "no topology nosuch: the topologies are accounts"},
		{Name: "reset of nothing", Args: []string{"reset"}, Says: "name the topologies to reset (accounts), or pass --all"},
		{Name: "reset of all and some", Args: []string{"reset", "--all", "accounts"}, Says: "name topologies or pass --all, not both"},
		{Name: "a config key that is no flag", Args: []string{"status", "--config", unknownKey}, Says: "unknown setting max-lags"},
		{Name: "a config file that is not YAML", Args: []string{"verify", "--config", notYAML}, Says: "is not YAML"},
		{Name: "a config file that does not exist", Args: []string{"--config", filepath.Join(dir, "none.yaml")}, Says: "none.yaml"},
	})
}

// TestConfigFileServesEveryCommand: one YAML file holds the settings of
// every command; each takes those it has.
func TestConfigFileServesEveryCommand(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	os.WriteFile(path, []byte("kafka:\n  brokers: [127.0.0.1:1]\npg-dsn: postgres://u@127.0.0.1:1/db\nmax-lag: [100, 30s]\nslot: accounts\nexclude-columns: [public.accounts.notes]\n"), 0o644)
	for _, cmd := range []string{"run", "status", "verify", "reset"} {
		var c cli
		if _, err := parseFlags(&c, "accounts", []string{cmd, "--config", path}, &bytes.Buffer{}, &bytes.Buffer{}, "accounts"); err != nil {
			t.Errorf("%s: %v", cmd, err)
			continue
		}
		if len(c.Kafka.Brokers) != 1 {
			t.Errorf("%s: brokers %v", cmd, c.Kafka.Brokers)
		}
		switch cmd {
		case "status":
			if c.Status.Source.PgDSN == "" || c.Status.Source.Slot != "accounts" || len(c.Status.MaxLag) != 2 || c.Status.MaxLag[0].Records != 100 || c.Status.MaxLag[1].Age.Seconds() != 30 {
				t.Errorf("status: %+v", c.Status)
			}
		case "verify":
			if c.Verify.PgDSN == "" || !slices.Equal(c.Verify.ExcludeColumns, []string{"public.accounts.notes"}) {
				t.Errorf("verify: %+v", c.Verify)
			}
		}
	}
}

// TestHelpListsEveryFlag: a processor binary's --help and each command's
// list every flag with its environment variable, and docs/running.md names
// every flag.
func TestHelpListsEveryFlag(t *testing.T) {
	clearEnv(t)
	runCLI := func(args []string, stdout, stderr io.Writer) int {
		return run(context.Background(), "accounts", args, stdin{}, stdout, stderr, []TopologyFunc{searchAccounts})
	}
	grammar := []kong.Option{kong.Vars{"topologies": "accounts"}}
	clitest.CheckHelpAndDocs(t, runCLI, "../docs/running.md", &cli{}, grammar...)
}
