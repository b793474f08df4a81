package processors_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
)

// TestSearchVersionOrder: increasing positions give increasing versions, up
// to the bounds, and beyond them SearchVersion fails instead of wrapping.
func TestSearchVersionOrder(t *testing.T) {
	ordered := []change.Position{
		{},
		{CommitLSN: 1, Index: 0},
		{CommitLSN: 1 << 32, Index: 1},
		{CommitLSN: 0x16B374D848, Index: 0}, // a snapshot read
		{CommitLSN: 0x16B374D848, Index: 1},
		{CommitLSN: 0x16B374D848, Index: 2},
		{CommitLSN: 0x16B374D848, Index: processors.MaxSearchIndex},
		{CommitLSN: 0x16B374D849, Index: 1},
		{CommitLSN: 0xFFFFFFFF<<8 | 0xFF, Index: 3},
		{CommitLSN: processors.MaxSearchCommitLSN - 1, Index: processors.MaxSearchIndex},
		{CommitLSN: processors.MaxSearchCommitLSN, Index: 0},
		{CommitLSN: processors.MaxSearchCommitLSN, Index: processors.MaxSearchIndex},
	}
	var prev int64 = -1
	for _, pos := range ordered {
		v, err := processors.SearchVersion(pos)
		if err != nil {
			t.Fatalf("SearchVersion(%s): %v", pos, err)
		}
		if v <= prev {
			t.Fatalf("SearchVersion(%s) = %d, not above the previous position's %d", pos, v, prev)
		}
		prev = v
	}
	if prev != 1<<63-1 {
		t.Fatalf("the last position's version is %d, want the largest int64", prev)
	}
	for _, tc := range []struct {
		name string
		pos  change.Position
		want string
	}{
		{"LSN beyond 47 bits", change.Position{CommitLSN: processors.MaxSearchCommitLSN + 1, Index: 1}, "commit LSN 8000/0 is beyond 7FFF/FFFFFFFF"},
		{"largest LSN", change.Position{CommitLSN: 1<<64 - 1}, "is beyond"},
		{"index beyond 16 bits", change.Position{CommitLSN: 100, Index: processors.MaxSearchIndex + 1}, "change 65536 of its transaction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := processors.SearchVersion(tc.pos)
			if !errors.Is(err, processors.ErrVersionRange) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SearchVersion(%s) = %d, %v; want ErrVersionRange saying %q", tc.pos, v, err, tc.want)
			}
		})
	}
}

// TestNewProcessorNeedsTheTopologysSinks: a search topology needs an
// Elasticsearch client and no Redis client, a metrics topology the reverse.
func TestNewProcessorNeedsTheTopologysSinks(t *testing.T) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	dec := serde.NewDecoder(nil)
	type row struct{ ID int64 }
	table := topologies.TableOf[row]("shop", "public", "orders")
	search := topologies.New("search", topologies.Index(table, "orders", func(r row) (string, any) { return "1", r }))
	metrics := topologies.New("metrics", topologies.Metrics(table, func(row) []topologies.Sample { return nil }))
	if _, err := processors.NewProcessor(search, processors.Config{Brokers: []string{"127.0.0.1:1"}, Decoder: dec}); err == nil ||
		!strings.Contains(err.Error(), "no Elasticsearch client") {
		t.Fatalf("search without Elasticsearch: %v", err)
	}
	// goka's NewProcessor dials the brokers; no broker listens, so it fails,
	// but not for a missing sink.
	if _, err := processors.NewProcessor(search, processors.Config{Brokers: []string{"127.0.0.1:1"}, Decoder: dec, Elasticsearch: es}); err != nil &&
		(strings.Contains(err.Error(), "no Redis client") || strings.Contains(err.Error(), "no Elasticsearch client")) {
		t.Fatalf("search with Elasticsearch and no Redis: %v", err)
	}
	if _, err := processors.NewProcessor(metrics, processors.Config{Brokers: []string{"127.0.0.1:1"}, Decoder: dec, Elasticsearch: es}); err == nil ||
		!strings.Contains(err.Error(), "no Redis client") {
		t.Fatalf("metrics without Redis: %v", err)
	}
}
