package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeTopologyBuilds builds the Go code of the README's "Run your
// topology" section, as a user would copy it: its first block is the
// main.go TestTenLineMainRunsAUsersTopology runs, its second the topology.
func TestReadmeTopologyBuilds(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Run your topology\n")
	if !ok {
		t.Fatal(`README.md has no "## Run your topology" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for rest := section; ; {
		_, after, found := strings.Cut(rest, "```go\n")
		if !found {
			break
		}
		block, tail, _ := strings.Cut(after, "```\n")
		blocks, rest = append(blocks, block), tail
	}
	if len(blocks) != 2 {
		t.Fatalf("the section has %d Go blocks, want main.go and the topology", len(blocks))
	}
	if blocks[0] != mainGo {
		t.Fatalf("the README's main.go is not the one the end-to-end test runs:\n%s", blocks[0])
	}
	buildModule(t, map[string]string{"main.go": blocks[0], "shipping.go": blocks[1]})
}
