package processors_test

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/elastic/go-elasticsearch/v8"
)

// TestNewProcessorNeedsTheTopologysSinks: a search topology needs an
// Elasticsearch client and no Redis client, a metrics topology the reverse;
// the errors name the Config fields. NewProcessor connects to nothing, so a
// complete Config passes without any service.
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
	events := topologies.New("events", topologies.Events(table, topologies.EventTopicOf("events.Row", struct{ ID int64 }{}), nil))
	nowhere := []string{"127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		topo *topologies.Topology
		cfg  processors.Config
		want []string // nil: valid
	}{
		{"search without Elasticsearch", search, processors.Config{Brokers: nowhere, Decoder: dec}, []string{"Config.Elasticsearch is nil: topology search keeps the search index orders"}},
		{"search with Elasticsearch", search, processors.Config{Brokers: nowhere, Decoder: dec, Elasticsearch: es}, nil},
		{"metrics without Redis", metrics, processors.Config{Brokers: nowhere, Decoder: dec, Elasticsearch: es}, []string{"Config.Redis is nil: topology metrics keeps metrics in Redis"}},
		{"nothing", metrics, processors.Config{Replication: -1}, []string{"Config.Brokers is empty", "Config.Decoder is nil", "Config.Replication is -1", "Config.Redis is nil"}},
		{"a broken Sarama adjustment", search, processors.Config{Brokers: nowhere, Decoder: dec, Elasticsearch: es,
			Sarama: func(sc *sarama.Config) error { sc.Net.SASL.Enable = true; return nil }}, []string{"Config.Sarama: the Kafka client configuration is invalid"}},
		{"an invalid topology", events, processors.Config{Brokers: nowhere, Decoder: dec}, []string{"has no type name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := processors.NewProcessor(tc.topo, tc.cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("NewProcessor: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewProcessor passed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
