package serde

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cdcflow/cdcflow/change"
	"github.com/linkedin/goavro/v2"
)

// Message is a logical decoding message (pg_logical_emit_message) as capture
// publishes it to the <prefix>.message topic, in Debezium's shape: op "m",
// the source block, and message{prefix, content}. Applications use them as an
// outbox: a message written in a transaction is published exactly when the
// transaction commits.
type Message struct {
	Prefix  string
	Content []byte
	Source  change.Source
	// Transaction is nil for non-transactional messages.
	Transaction *change.Transaction
	TsMs        int64
	Position    change.Position
}

// MessageTopic returns the logical-decoding-message topic of prefix.
func MessageTopic(prefix string) string { return prefix + ".message" }

const messageKeySchema = `{"type":"record","name":"MessageKey","namespace":"io.debezium.connector.postgresql",` +
	`"fields":[{"name":"prefix","type":["null","string"],"default":null}],"connect.name":"io.debezium.connector.postgresql.MessageKey"}`

var messageSchemas = sync.OnceValues(func() ([2]string, error) {
	value := map[string]any{
		"type": "record", "name": "MessageValue", "namespace": "io.debezium.connector.postgresql",
		"fields": []any{
			map[string]any{"name": "op", "type": "string"},
			optionalLong("ts_ms"),
			map[string]any{"name": "source", "type": sourceSchema()},
			map[string]any{"name": "message", "type": []any{"null", map[string]any{
				"type": "record", "name": "Message", "namespace": "io.debezium.connector.postgresql",
				"fields": []any{
					map[string]any{"name": "prefix", "type": []any{"null", "string"}, "default": nil},
					map[string]any{"name": "content", "type": []any{"null", "bytes"}, "default": nil},
				},
				"connect.name": "io.debezium.connector.postgresql.Message",
			}}, "default": nil},
			map[string]any{"name": "transaction", "type": []any{"null", transactionSchema()}, "default": nil},
		},
		"connect.name": "io.debezium.connector.postgresql.MessageValue",
	}
	b, err := json.Marshal(value)
	return [2]string{messageKeySchema, string(b)}, err
})

var messageCodecs = sync.OnceValues(func() ([2]*goavro.Codec, error) {
	schemas, err := messageSchemas()
	if err != nil {
		return [2]*goavro.Codec{}, err
	}
	k, err := goavro.NewCodec(schemas[0])
	if err != nil {
		return [2]*goavro.Codec{}, err
	}
	v, err := goavro.NewCodec(schemas[1])
	return [2]*goavro.Codec{k, v}, err
})

// EncodeMessage encodes a logical decoding message for the <prefix>.message
// topic, keyed by its prefix.
func (e *Encoder) EncodeMessage(ctx context.Context, m *Message) (Encoded, error) {
	schemas, err := messageSchemas()
	if err != nil {
		return Encoded{}, err
	}
	codecs, err := messageCodecs()
	if err != nil {
		return Encoded{}, err
	}
	ids, err := e.registerPair(ctx, MessageTopic(e.prefix), schemas)
	if err != nil {
		return Encoded{}, err
	}
	key, err := codecs[0].BinaryFromNative(nil, map[string]any{"prefix": goavro.Union("string", m.Prefix)})
	if err != nil {
		return Encoded{}, fmt.Errorf("encode message key: %w", err)
	}
	value := map[string]any{
		"op": "m", "ts_ms": goavro.Union("long", m.TsMs), "source": sourceNative(m.Source),
		"message": goavro.Union("io.debezium.connector.postgresql.Message", map[string]any{
			"prefix": goavro.Union("string", m.Prefix), "content": goavro.Union("bytes", m.Content),
		}),
		"transaction": transactionNative(m.Transaction),
	}
	body, err := codecs[1].BinaryFromNative(nil, value)
	if err != nil {
		return Encoded{}, fmt.Errorf("encode message: %w", err)
	}
	return Encoded{Topic: MessageTopic(e.prefix), Key: AppendWire(nil, ids[0], key), Value: AppendWire(nil, ids[1], body)}, nil
}

// DecodeMessage decodes a record of the message topic.
func (d *Decoder) DecodeMessage(ctx context.Context, value []byte) (*Message, error) {
	r, id, body, err := d.readerOf(ctx, value)
	if err != nil {
		return nil, err
	}
	native, _, err := r.codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("decode message with schema id %d: %w", id, err)
	}
	v, _ := native.(map[string]any)
	m := &Message{Source: sourceFromNative(v["source"]), Transaction: transactionFromNative(v["transaction"])}
	m.TsMs, _ = unwrapUnion(v["ts_ms"]).(int64)
	if msg, ok := unwrapUnion(v["message"]).(map[string]any); ok {
		m.Prefix, _ = unwrapUnion(msg["prefix"]).(string)
		m.Content, _ = unwrapUnion(msg["content"]).([]byte)
	}
	m.Position, err = positionOf(m.Source, m.Transaction)
	return m, err
}
