package serde

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
	// ID is "<txId>:<LSN>", as Debezium's PostgresTransactionMonitor forms
	// it: the LSN of the transaction's BEGIN on BEGIN records, of its end on
	// END records (the envelopes' transaction.id carries each change's LSN).
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

// Names of the transaction topic's records and of a data_collections item.
const (
	transactionKeyName   = "io.debezium.connector.common.TransactionMetadataKey"
	transactionValueName = "io.debezium.connector.common.TransactionMetadataValue"
	dataCollectionName   = "event.collection"
)

// transactionSchemas are the key and value schemas of the transaction topic
// as Debezium 3.6 defines them (SchemaFactory.transactionKeySchema,
// transactionValueSchema and transactionEventCountPerDataCollectionSchema,
// each version 1) and Confluent's AvroConverter writes them: data_collections
// is an optional array of optional event.collection records.
var transactionSchemas = sync.OnceValues(func() ([2]string, error) {
	key := map[string]any{
		"type": "record", "name": "TransactionMetadataKey", "namespace": "io.debezium.connector.common",
		"fields":          []any{map[string]any{"name": "id", "type": "string"}},
		"connect.version": 1, "connect.name": transactionKeyName,
	}
	collection := map[string]any{
		"type": "record", "name": "collection", "namespace": "event",
		"fields": []any{
			map[string]any{"name": "data_collection", "type": "string"},
			map[string]any{"name": "event_count", "type": "long"},
		},
		"connect.version": 1, "connect.name": dataCollectionName,
	}
	value := map[string]any{
		"type": "record", "name": "TransactionMetadataValue", "namespace": "io.debezium.connector.common",
		"fields": []any{
			map[string]any{"name": "status", "type": "string"},
			map[string]any{"name": "id", "type": "string"},
			optionalLong("event_count"),
			map[string]any{"name": "data_collections", "type": []any{"null",
				map[string]any{"type": "array", "items": []any{"null", collection}}}, "default": nil},
			map[string]any{"name": "ts_ms", "type": "long"},
		},
		"connect.version": 1, "connect.name": transactionValueName,
	}
	var out [2]string
	for i, schema := range []any{key, value} {
		b, err := json.Marshal(schema)
		if err != nil {
			return out, err
		}
		out[i] = string(b)
	}
	return out, nil
})

// EncodeTransaction encodes a transaction-metadata record for the
// <prefix>.transaction topic, keyed by the transaction id. It writes Avro's
// binary encoding of transactionSchemas itself: capture writes two of these
// per source transaction, and goavro's native maps cost more than the
// encoding.
func (e *Encoder) EncodeTransaction(ctx context.Context, rec TransactionRecord) (Encoded, error) {
	schemas, err := transactionSchemas()
	if err != nil {
		return Encoded{}, err
	}
	topic := TransactionTopic(e.prefix)
	ids, err := e.registerPair(ctx, topic, schemas)
	if err != nil {
		return Encoded{}, err
	}
	key := appendString(AppendWire(make([]byte, 0, wireHeaderLen+1+len(rec.ID)), ids[0], nil), rec.ID)
	value := AppendWire(make([]byte, 0, 64+len(rec.ID)+32*len(rec.DataCollections)), ids[1], nil)
	value = appendString(value, string(rec.Status))
	value = appendString(value, rec.ID)
	if rec.Status == TransactionEnd {
		value = appendLong(appendUnionIndex(value, 1), rec.EventCount)
		value = appendUnionIndex(value, 1) // an array of ["null", event.collection]
		if n := len(rec.DataCollections); n > 0 {
			value = appendLong(value, int64(n))
			for _, dc := range rec.DataCollections {
				value = appendString(appendUnionIndex(value, 1), dc.DataCollection)
				value = appendLong(value, dc.EventCount)
			}
		}
		value = appendLong(value, 0) // the end of the array's blocks
	} else {
		value = appendUnionIndex(appendUnionIndex(value, 0), 0) // no event_count, no data_collections
	}
	value = appendLong(value, rec.TsMs)
	return Encoded{Topic: topic, Key: key, Value: value}, nil
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
		dc, _ := unwrapUnion(x).(map[string]any)
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
