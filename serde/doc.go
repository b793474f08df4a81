// Package serde turns change events into bytes and back: Avro schemas derived
// from a table's columns and named the way Debezium names them
// (<prefix>.<schema>.<table>.Key, .Value, .Envelope), the Confluent wire
// format (magic byte 0, a 4-byte schema id, the Avro body), a schema-registry
// backed [Encoder] and [Decoder], and goka codecs for envelopes.
package serde
