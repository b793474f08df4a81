package processors_test

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/sr"
)

// A processor binary: a topology, the schema registry its change topics
// are encoded with, Redis for its metrics, until interrupted. (Not run: it
// needs Kafka, a registry and Redis.)
func Example() {
	type Order struct {
		ID     int64
		Status string
	}
	topo := topologies.New("order-metrics",
		topologies.Metrics(topologies.TableOf[Order]("shop", "public", "orders"), func(o Order) []topologies.Sample {
			return []topologies.Sample{{Series: "orders_per_status", Bucket: o.Status, Value: 1}}
		}))

	registry, err := sr.NewClient(sr.URLs("http://127.0.0.1:8081"))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	proc, err := processors.NewProcessor(topo, processors.Config{
		Brokers: []string{"127.0.0.1:9092"},
		Decoder: serde.NewDecoder(registry),
		Redis:   rdb,
	})
	if err != nil {
		log.Fatal(err) // every problem with topo and the configuration at once
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := proc.Run(ctx); err != nil {
		log.Fatal(err)
	}
	// Series are read back with proc.Metrics().Series(ctx, topo.Name, "orders_per_status").
}
