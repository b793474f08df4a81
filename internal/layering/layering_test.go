// Package layering holds the test that keeps package dependencies pointing
// downward, as ARCHITECTURE.md lays them out.
package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cdcflow/cdcflow"

type pkg struct {
	ImportPath string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestDependenciesPointDownward(t *testing.T) {
	rules := []struct {
		pkg       string // the package (and its sub-packages)
		forbidden []string
	}{
		{"change", []string{"github.com/", "golang.org/", "go.uber.org/"}}, // the standard library only
		{"capture", []string{"github.com/lovoo/goka", module + "/topologies", module + "/processors", module + "/views"}},
		{"serde", []string{module + "/capture", module + "/topologies", module + "/processors", module + "/views"}},
		{"topologies", []string{"github.com/lovoo/goka", "github.com/IBM/sarama", "github.com/redis/", module + "/capture", module + "/processors"}},
		{"views", []string{module + "/processors"}},
		{"processors", []string{module + "/capture", module + "/app"}},
		// The engine is pure: topologies (which must not import goka) builds on it.
		{"internal/engine", []string{"github.com/lovoo/goka", "github.com/IBM/sarama", "github.com/redis/", "github.com/twmb/", module + "/topologies", module + "/processors", module + "/serde", module + "/capture"}},
		{"kafkaconn", []string{module + "/capture", module + "/processors", module + "/topologies", module + "/serde", module + "/app"}},
	}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/cmd") {
				t.Errorf("%s imports %s: nothing imports cmd/", p.ImportPath, dep)
			}
			// tools/ are the project's own programs (the benchmark runs the
			// example's topologies), not part of what users import.
			if strings.HasPrefix(dep, module+"/examples") && !strings.HasPrefix(rel, "examples/") && !strings.HasPrefix(rel, "tools/") {
				t.Errorf("%s imports %s: nothing outside examples/ and tools/ imports them (cmd/ is the generic binary)", p.ImportPath, dep)
			}
			for _, r := range rules {
				if rel != r.pkg && !strings.HasPrefix(rel, r.pkg+"/") {
					continue
				}
				for _, f := range r.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s imports %s, which it must not", p.ImportPath, dep)
					}
				}
			}
		}
	}
}
