// Package kafkahash hashes keys as Kafka's default partitioner does
// (murmur2, the sign bit cleared), for goka, whose default hasher (FNV-1a)
// places keys elsewhere.
//
// goka keeps a processor's table partitioned like its input: the row state
// of a key read from partition p of a change topic must be written to
// partition p of the group table, or a restarted processor recovers
// partition p's table without that key's state. Capture, like every Kafka
// producer by default, partitions change topics by murmur2; so goka must
// hash as Kafka does, in processors, views and emitters alike.
package kafkahash

import (
	"hash"

	"github.com/twmb/franz-go/pkg/kgo"
)

// New returns a hash.Hash32 whose Sum32 is Kafka's murmur2 of what was
// written, with the sign bit cleared: modulo n it is the partition Kafka's
// default partitioner picks among n, and sarama's hash partitioner and
// goka's views take it modulo n.
func New() hash.Hash32 { return &hasher{} }

// kafka is franz-go's Kafka-compatible key partitioner. A record with a key
// gets toPositive(murmur2(key)) % n; with n = 2^31 that is the hash itself.
var kafka = kgo.StickyKeyPartitioner(nil).ForTopic("")

type hasher struct{ key []byte }

func (h *hasher) Write(p []byte) (int, error) {
	h.key = append(h.key, p...)
	return len(p), nil
}

func (h *hasher) Sum32() uint32 {
	key := h.key
	if key == nil {
		key = []byte{} // a key, if empty: not the sticky path for no key
	}
	return uint32(kafka.Partition(&kgo.Record{Key: key}, 1<<31))
}

func (h *hasher) Sum(b []byte) []byte {
	s := h.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

func (h *hasher) Reset()         { h.key = h.key[:0] }
func (h *hasher) Size() int      { return 4 }
func (h *hasher) BlockSize() int { return 1 }
