package app

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
)

// loadConfig reads the YAML file path into a kong resolver over the flags of
// parser's commands. A key is a flag's name (kafka-brokers), or its parts nested
// (kafka: {brokers: ...}). A key that names no flag is an error, and so is a
// file that is not YAML. A flag whose environment variable is set keeps the
// variable's value: the environment wins over the file.
func loadConfig(path string, parser *kong.Kong) (kong.Resolver, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s is not YAML: %w", path, err)
	}
	// The keys are the flags of every command: one file serves them all.
	flags := map[string]*kong.Flag{}
	var collect func(n *kong.Node)
	collect = func(n *kong.Node) {
		for _, f := range n.Flags {
			flags[f.Name] = f
		}
		for _, c := range n.Children {
			collect(c)
		}
	}
	collect(parser.Model.Node)
	values := map[string]any{}
	var unknown []string
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			if _, ok := flags[key]; ok {
				values[key] = v
				continue
			}
			if sub, ok := v.(map[string]any); ok {
				flatten(key+"-", sub)
				continue
			}
			unknown = append(unknown, key)
		}
	}
	flatten("", doc)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("config file %s: unknown setting %s; the settings are the long flag names of --help", path, strings.Join(unknown, ", "))
	}
	if _, ok := values["config"]; ok {
		return nil, errors.New("config file " + path + ": a config file cannot name another (config)")
	}
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		for _, env := range flag.Envs {
			if _, set := os.LookupEnv(env); set {
				return nil, nil
			}
		}
		v, ok := values[flag.Name]
		if !ok {
			return nil, nil
		}
		if list, isList := v.([]any); isList { // kong reads a list as its separated text
			parts := make([]string, len(list))
			for i, x := range list {
				parts[i] = fmt.Sprint(x)
			}
			return strings.Join(parts, ","), nil
		}
		return v, nil
	}), nil
}
