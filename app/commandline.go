package app

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
)

// ErrHelp is what ParseCommandLine returns after it printed help (--help):
// the binary exits 0.
var ErrHelp = errors.New("help printed")

// ParseCommandLine parses args into grammar, a pointer to a kong grammar
// struct, as every cdcflow binary parses its command line: flags win over
// environment variables, which win over the YAML file that a flag named
// config names (the file's keys are the long flag names of every command;
// a key that names no flag is an error). Help goes to stdout and returns
// ErrHelp; a mistake (an unknown flag or command, a bad value, a bad config
// file) returns an error of one line, and nothing exits: the caller prints
// "<name>: <error>" and exits 1.
func ParseCommandLine(grammar any, args []string, stdout, stderr io.Writer, opts ...kong.Option) (*kong.Context, error) {
	exited := false
	opts = append(opts, kong.Writers(stdout, stderr), kong.Exit(func(int) { exited = true }))
	parser, err := kong.New(grammar, opts...)
	if err != nil {
		return nil, err
	}
	kctx, err := parser.Parse(args)
	if exited {
		return nil, ErrHelp
	}
	if err != nil {
		return nil, err
	}
	path := configPath(kctx)
	if path == "" {
		return kctx, nil
	}
	resolver, err := loadConfig(path, parser)
	if err != nil {
		return nil, err
	}
	v := reflect.ValueOf(grammar).Elem()
	v.Set(reflect.Zero(v.Type()))
	parser, err = kong.New(grammar, append(opts, kong.Resolvers(resolver))...)
	if err != nil {
		return nil, err
	}
	return parser.Parse(args)
}

// configPath is the value of the flag named config on kctx's path, if any.
func configPath(kctx *kong.Context) string {
	for _, f := range kctx.Flags() {
		if f.Name == "config" {
			if s, ok := kctx.FlagValue(f).(string); ok {
				return s
			}
		}
	}
	return ""
}

// PrintError prints err as a binary's answer to a mistake or a failure: a
// line "<name>: <problem>" for each problem err joins (errors.Join puts one
// per line).
func PrintError(w io.Writer, name string, err error) {
	for line := range strings.SplitSeq(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, line)
	}
}
