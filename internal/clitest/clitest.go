// Package clitest checks the command line of a cdcflow binary as its user
// meets it: every command's --help lists every flag with its environment
// variable, the documentation names every flag, and each mistake is one
// line that names it.
package clitest

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// Run runs a binary's main on args and returns its exit status.
type Run func(args []string, stdout, stderr io.Writer) int

// Flag is a flag as a user sees it: its long name and its environment
// variables.
type Flag struct {
	Name string
	Envs []string
}

// Commands lists the commands of grammar (a kong grammar, parsed with
// opts), each as its path of words ("" for the binary itself, "status",
// ...), with the flags it takes: its own and its parents'. Hidden flags and
// --help are left out.
func Commands(t *testing.T, grammar any, opts ...kong.Option) map[string][]Flag {
	t.Helper()
	parser, err := kong.New(grammar, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]Flag{}
	var walk func(n *kong.Node, path []string, inherited []Flag)
	walk = func(n *kong.Node, path []string, inherited []Flag) {
		flags := slices.Clone(inherited)
		for _, f := range n.Flags {
			if f.Hidden || f.Name == "help" {
				continue
			}
			flags = append(flags, Flag{Name: f.Name, Envs: f.Envs})
		}
		out[strings.Join(path, " ")] = flags
		for _, c := range n.Children {
			if c.Type == kong.CommandNode {
				walk(c, append(slices.Clone(path), c.Name), flags)
			}
		}
	}
	walk(parser.Model.Node, nil, nil)
	return out
}

// CheckHelp runs every command of grammar with --help: each exits 0 and
// lists every flag it takes with its environment variables.
func CheckHelp(t *testing.T, run Run, grammar any, opts ...kong.Option) {
	t.Helper()
	for cmd, flags := range Commands(t, grammar, opts...) {
		args := append(strings.Fields(cmd), "--help")
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d, want 0\n%s%s", args, code, out.String(), errOut.String())
			continue
		}
		for _, f := range flags {
			if !strings.Contains(out.String(), "--"+f.Name) {
				t.Errorf("%v does not list --%s:\n%s", args, f.Name, out.String())
			}
			for _, env := range f.Envs {
				if !strings.Contains(out.String(), "$"+env) {
					t.Errorf("%v does not name --%s's environment variable %s", args, f.Name, env)
				}
			}
		}
	}
}

// CheckHelpAndDocs runs CheckHelp, then CheckDocumented on the file at
// docPath.
func CheckHelpAndDocs(t *testing.T, run Run, docPath string, grammar any, opts ...kong.Option) {
	t.Helper()
	CheckHelp(t, run, grammar, opts...)
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	CheckDocumented(t, filepath.Base(docPath), string(doc), grammar, opts...)
}

// CheckDocumented checks that doc names every flag of grammar's commands,
// as `--name` or under a family such as `--kafka-*`.
func CheckDocumented(t *testing.T, docName, doc string, grammar any, opts ...kong.Option) {
	t.Helper()
	named := map[string]bool{}
	var families []string
	for _, m := range regexp.MustCompile("--([a-z0-9-]+)(\\*?)").FindAllStringSubmatch(doc, -1) {
		if m[2] == "*" {
			families = append(families, m[1])
		} else {
			named[m[1]] = true
		}
	}
	missing := map[string]bool{}
	for _, flags := range Commands(t, grammar, opts...) {
		for _, f := range flags {
			if !named[f.Name] && !slices.ContainsFunc(families, func(p string) bool { return strings.HasPrefix(f.Name, p) }) {
				missing[f.Name] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		t.Errorf("%s does not name the flag --%s", docName, name)
	}
}

// Mistake is a command line with a mistake in it, and what the one line
// that answers it must say.
type Mistake struct {
	Name string
	Args []string
	Says string
}

// CheckMistakes runs each mistake: the binary exits 1 after exactly one
// line, "<binary>: ...", that says what the mistake must.
func CheckMistakes(t *testing.T, binary string, run Run, mistakes []Mistake) {
	t.Helper()
	for _, m := range mistakes {
		t.Run(m.Name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(m.Args, &out, &out)
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], binary+": ") || !strings.Contains(lines[0], m.Says) {
				t.Errorf("%v: exit %d, want 1 and one line saying %q:\n%s", m.Args, code, m.Says, out.String())
			}
		})
	}
}
