package kafkahash

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// goka's producers partition with sarama's hash partitioner over New: the
// partitions must be those franz-go's default partitioner (Kafka's), which
// capture uses, picks for the same keys.
func TestPartitionsAsKafka(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"", "1", "42", "order-7", `{"id":1}`}
	for range 5000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		keys = append(keys, string(b))
	}
	franz := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	goka := sarama.NewCustomHashPartitioner(New)("t")
	for _, n := range []int{1, 2, 3, 4, 7, 12, 100} {
		for _, k := range keys {
			want := franz.Partition(&kgo.Record{Key: []byte(k)}, n)
			got, err := goka.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, int32(n))
			if err != nil {
				t.Fatal(err)
			}
			if int(got) != want {
				t.Fatalf("key %q among %d partitions: goka's producer picks %d, Kafka's partitioner %d", k, n, got, want)
			}
		}
	}
	// Known values of Kafka's Utils.murmur2 (its tests), sign bit cleared.
	for key, murmur2 := range map[string]int32{"21": -973932308, "foobar": -790332482} {
		h := New()
		fmt.Fprint(h, key)
		if got, want := h.Sum32(), uint32(murmur2)&0x7fffffff; got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}
