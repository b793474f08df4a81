package processors

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// The headers of a dead-letter record; its value is the original record's
// value, its key the original key.
const (
	HeaderError     = "cdcflow.error"
	HeaderTopic     = "cdcflow.topic"
	HeaderPartition = "cdcflow.partition"
	HeaderOffset    = "cdcflow.offset"
	HeaderPosition  = "cdcflow.position"
)

// rawEvent is a change record as the dead-letter path needs it: the decoded
// event and the bytes it came from. A record that cannot be decoded has err
// set, so that it goes to the dead-letter topic instead of stopping goka.
type rawEvent struct {
	raw []byte
	ev  *change.Event // nil for a tombstone
	err error
}

// rawEventCodec decodes change envelopes keeping their bytes.
type rawEventCodec struct{ events serde.EventCodec }

func (c rawEventCodec) Encode(v any) ([]byte, error) { return c.events.Encode(v) }

func (c rawEventCodec) Decode(data []byte) (any, error) {
	m := &rawEvent{raw: bytes.Clone(data)}
	if data == nil {
		return m, nil
	}
	v, err := c.events.Decode(data)
	if err != nil {
		m.err = fmt.Errorf("decode change envelope: %w", err)
		return m, nil
	}
	m.ev, _ = v.(*change.Event)
	return m, nil
}

// deadLetterEdge is the output edge of the processor's dead-letter topic.
func (p *Processor) deadLetterEdge() goka.Edge {
	return goka.Output(goka.Stream(p.cfg.DeadLetterTopic), new(codec.Bytes))
}

// deadLetter sends the record being processed to the dead-letter topic with
// cause and where it came from in its headers. Goka commits the record's
// offset only once the dead letter is written, so no change is lost.
func (p *Processor) deadLetter(gctx goka.Context, raw []byte, pos *change.Position, cause error) {
	h := goka.Headers{
		HeaderError:     []byte(cause.Error()),
		HeaderTopic:     []byte(gctx.Topic()),
		HeaderPartition: []byte(strconv.FormatInt(int64(gctx.Partition()), 10)),
		HeaderOffset:    []byte(strconv.FormatInt(gctx.Offset(), 10)),
	}
	if pos != nil {
		h[HeaderPosition] = []byte(pos.String())
	}
	gctx.Emit(goka.Stream(p.cfg.DeadLetterTopic), gctx.Key(), raw, goka.WithCtxEmitHeaders(h))
	p.deadLetters.Add(1)
	p.cfg.Logger.Error("change sent to the dead-letter topic", "topic", gctx.Topic(), "partition", gctx.Partition(),
		"offset", gctx.Offset(), "dead_letter_topic", p.cfg.DeadLetterTopic, "err", cause)
}
