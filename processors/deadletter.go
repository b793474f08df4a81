package processors

import (
	"sync/atomic"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"golang.org/x/time/rate"
)

// The headers of a dead-letter record; its value is the original record's
// value, its key the original key.
const (
	HeaderError     = "cdcflow.error"
	HeaderTopic     = "cdcflow.topic"
	HeaderPartition = "cdcflow.partition"
	HeaderOffset    = "cdcflow.offset"
	HeaderPosition  = "cdcflow.position"
	// HeaderGroup names the consumer group that dead-lettered the record.
	HeaderGroup = "cdcflow.group"
)

// deadLetterEdge is the output edge of the processor's dead-letter topic.
func (p *Processor) deadLetterEdge() goka.Edge {
	return goka.Output(goka.Stream(p.cfg.DeadLetterTopic), new(codec.Bytes))
}

// deadLetter sends the record being processed to the dead-letter topic with
// cause and where it came from in its headers, and counts it under reason.
// Goka commits the record's offset only once the dead letter is written, so
// no record is lost. The log says so for the first records, then once every
// ten seconds with how many followed.
func (p *Processor) deadLetter(gctx goka.Context, raw []byte, pos *change.Position, reason string, cause error) {
	h := newDeadLetterRecord(gctx, raw, pos).header
	h[HeaderError] = []byte(cause.Error())
	gctx.Emit(goka.Stream(p.cfg.DeadLetterTopic), gctx.Key(), raw, goka.WithCtxEmitHeaders(h))
	p.counters.deadLetter(string(gctx.Topic()), reason)
	p.deadLetterLog.unlogged.Add(1)
	p.deadLetterLog.Do(func() {
		p.cfg.Logger.Error("record sent to the dead-letter topic", "topology", p.topo.Name, "reason", reason,
			"topic", gctx.Topic(), "partition", gctx.Partition(), "offset", gctx.Offset(),
			"dead_letter_topic", p.cfg.DeadLetterTopic, "err", cause,
			"dead_letters_since_last_line", p.deadLetterLog.unlogged.Swap(0))
	})
}

// rateLimitedLog runs its Do function for the first ten calls, then once
// every ten seconds; unlogged counts the calls since the last one that ran.
type rateLimitedLog struct {
	rate.Sometimes
	unlogged atomic.Int64
}

func newRateLimitedLog() *rateLimitedLog {
	return &rateLimitedLog{Sometimes: rate.Sometimes{First: 10, Interval: 10 * time.Second}}
}
