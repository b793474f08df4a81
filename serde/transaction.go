package serde

import (
	"context"
	"fmt"
	"sync"

	"github.com/linkedin/goavro/v2"
)

// TransactionStatus marks a transaction-metadata record as the BEGIN or the
// END of a source transaction.
type TransactionStatus string

// The statuses of transaction-metadata records, as Debezium writes them.
const (
	TransactionBegin TransactionStatus = "BEGIN"
	TransactionEnd   TransactionStatus = "END"
)

// TransactionRecord is one record of the <prefix>.transaction topic:
// Debezium's transaction boundary event. EventCount and DataCollections are
// set on END records only.
type TransactionRecord struct {
	Status TransactionStatus
	// ID is the transaction id, as in the envelopes' transaction.id.
	ID   string
	TsMs int64
	// EventCount is how many change events the transaction produced.
	EventCount int64
	// DataCollections counts the events per table ("schema.table").
	DataCollections []DataCollectionCount
}

// DataCollectionCount is the number of events of one table in a transaction.
type DataCollectionCount struct {
	DataCollection string
	EventCount     int64
}

// TransactionTopic returns the transaction-metadata topic of prefix.
func TransactionTopic(prefix string) string { return prefix + ".transaction" }

const (
	transactionKeySchema = `{"type":"record","name":"TransactionMetadataKey","namespace":"io.debezium.connector.common",` +
		`"fields":[{"name":"id","type":"string"}],"connect.name":"io.debezium.connector.common.TransactionMetadataKey"}`
	transactionValueSchema = `{"type":"record","name":"TransactionMetadataValue","namespace":"io.debezium.connector.common",` +
		`"fields":[{"name":"status","type":"string"},{"name":"id","type":"string"},` +
		`{"name":"event_count","type":["null","long"],"default":null},` +
		`{"name":"data_collections","type":["null",{"type":"array","items":{"type":"record","name":"ConnectDefault",` +
		`"namespace":"io.confluent.connect.avro","fields":[{"name":"data_collection","type":"string"},` +
		`{"name":"event_count","type":"long"}]}}],"default":null},` +
		`{"name":"ts_ms","type":"long"}],"connect.name":"io.debezium.connector.common.TransactionMetadataValue"}`
)

var transactionCodecs = sync.OnceValues(func() ([2]*goavro.Codec, error) {
	k, err := goavro.NewCodec(transactionKeySchema)
	if err != nil {
		return [2]*goavro.Codec{}, err
	}
	v, err := goavro.NewCodec(transactionValueSchema)
	return [2]*goavro.Codec{k, v}, err
})

// EncodeTransaction encodes a transaction-metadata record for the
// <prefix>.transaction topic, keyed by the transaction id.
func (e *Encoder) EncodeTransaction(ctx context.Context, rec TransactionRecord) (Encoded, error) {
	codecs, err := transactionCodecs()
	if err != nil {
		return Encoded{}, err
	}
	topic := TransactionTopic(e.prefix)
	ids, err := e.registerPair(ctx, topic, [2]string{transactionKeySchema, transactionValueSchema})
	if err != nil {
		return Encoded{}, err
	}
	key, err := codecs[0].BinaryFromNative(nil, map[string]any{"id": rec.ID})
	if err != nil {
		return Encoded{}, fmt.Errorf("encode transaction key: %w", err)
	}
	value := map[string]any{"status": string(rec.Status), "id": rec.ID, "ts_ms": rec.TsMs,
		"event_count": nil, "data_collections": nil}
	if rec.Status == TransactionEnd {
		value["event_count"] = goavro.Union("long", rec.EventCount)
		dcs := make([]any, len(rec.DataCollections))
		for i, dc := range rec.DataCollections {
			dcs[i] = map[string]any{"data_collection": dc.DataCollection, "event_count": dc.EventCount}
		}
		value["data_collections"] = goavro.Union("array", dcs)
	}
	body, err := codecs[1].BinaryFromNative(nil, value)
	if err != nil {
		return Encoded{}, fmt.Errorf("encode transaction record: %w", err)
	}
	return Encoded{Topic: topic, Key: AppendWire(nil, ids[0], key), Value: AppendWire(nil, ids[1], body)}, nil
}

// DecodeTransaction decodes a record of the transaction-metadata topic.
func (d *Decoder) DecodeTransaction(ctx context.Context, value []byte) (TransactionRecord, error) {
	r, id, body, err := d.readerOf(ctx, value)
	if err != nil {
		return TransactionRecord{}, err
	}
	native, _, err := r.codec.NativeFromBinary(body)
	if err != nil {
		return TransactionRecord{}, fmt.Errorf("decode transaction record with schema id %d: %w", id, err)
	}
	m, _ := native.(map[string]any)
	rec := TransactionRecord{}
	rec.Status = TransactionStatus(fmt.Sprint(m["status"]))
	rec.ID, _ = m["id"].(string)
	rec.TsMs, _ = m["ts_ms"].(int64)
	rec.EventCount, _ = unwrapUnion(m["event_count"]).(int64)
	dcs, _ := unwrapUnion(m["data_collections"]).([]any)
	for _, x := range dcs {
		dc, _ := x.(map[string]any)
		n, _ := dc["event_count"].(int64)
		name, _ := dc["data_collection"].(string)
		rec.DataCollections = append(rec.DataCollections, DataCollectionCount{DataCollection: name, EventCount: n})
	}
	return rec, nil
}

// registerPair registers a fixed key and value schema for topic once.
func (e *Encoder) registerPair(ctx context.Context, topic string, schemas [2]string) ([2]int, error) {
	e.mu.Lock()
	ids, ok := e.fixedIDs[topic]
	e.mu.Unlock()
	if ok {
		return ids, nil
	}
	var err error
	if ids[0], err = e.create(ctx, topic+"-key", schemas[0]); err != nil {
		return ids, err
	}
	if ids[1], err = e.create(ctx, topic+"-value", schemas[1]); err != nil {
		return ids, err
	}
	e.mu.Lock()
	e.fixedIDs[topic] = ids
	e.mu.Unlock()
	return ids, nil
}
