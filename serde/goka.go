package serde

import (
	"context"
	"errors"
	"time"
)

// EventCodec is a goka codec for change envelopes on a change topic. Decode
// returns a *change.Event, or nil for a tombstone. Capture writes these
// topics, so Encode refuses: a topology never emits raw envelopes.
type EventCodec struct {
	Decoder *Decoder
	// Timeout bounds a schema lookup in the registry (default 30s).
	Timeout time.Duration
}

// Encode always fails: envelopes are written by capture only.
func (c EventCodec) Encode(any) ([]byte, error) {
	return nil, errors.New("serde.EventCodec cannot encode: change envelopes are written by capture")
}

// Decode decodes a wire-format envelope.
func (c EventCodec) Decode(data []byte) (any, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev, err := c.Decoder.DecodeEvent(ctx, data)
	if err != nil || ev == nil {
		return nil, err
	}
	return ev, nil
}
