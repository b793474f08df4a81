// Package serde turns change events into bytes and back: Avro schemas derived
// from a table's columns and named the way Debezium names them
// (<prefix>.<schema>.<table>.Key, .Value, .Envelope), the Confluent wire
// format (magic byte 0, a 4-byte schema id, the Avro body), a schema-registry
// backed [Encoder] and [Decoder], and goka codecs for envelopes.
//
// # Column types
//
// Columns map to Avro as Debezium's PostgreSQL connector maps them with its
// default settings (time.precision.mode=adaptive, decimal.handling.mode=precise,
// interval.handling.mode=numeric, hstore.handling.mode=json), written the way
// Confluent's AvroConverter writes Kafka Connect schemas: the semantic type in
// connect.name, its version in connect.version, its parameters in
// connect.parameters.
//
//	PostgreSQL                  Avro                          connect.name, parameters
//	smallint                    int (connect.type int16)
//	integer                     int
//	bigint, oid                 long
//	real                        float
//	double precision            double
//	boolean                     boolean
//	numeric(p,s)                bytes, logicalType decimal    org.apache.kafka.connect.data.Decimal, scale s, connect.decimal.precision p
//	numeric                     record {scale int, value bytes} io.debezium.data.VariableScaleDecimal
//	money                       bytes, logicalType decimal    org.apache.kafka.connect.data.Decimal, scale 2 (Avro precision 64)
//	text, varchar, char, name   string
//	bytea                       bytes
//	date                        int, days since the epoch     io.debezium.time.Date
//	time(0..3)                  int, ms past midnight         io.debezium.time.Time
//	time, time(4..6)            long, µs past midnight        io.debezium.time.MicroTime
//	timetz                      string, "08:15:30.5Z" (UTC)   io.debezium.time.ZonedTime
//	timestamp(0..3)             long, ms since the epoch      io.debezium.time.Timestamp
//	timestamp, timestamp(4..6)  long, µs since the epoch      io.debezium.time.MicroTimestamp
//	timestamptz(p)              string, ISO-8601 in UTC with p fractional digits (6 without p)
//	                                                          io.debezium.time.ZonedTimestamp
//	interval                    long, µs (a month 30.4375 d)  io.debezium.time.MicroDuration
//	uuid                        string                        io.debezium.data.Uuid
//	json, jsonb                 string                        io.debezium.data.Json
//	hstore                      string, a JSON object         io.debezium.data.Json
//	xml                         string                        io.debezium.data.Xml
//	ltree                       string                        io.debezium.data.Ltree
//	enum types                  string                        io.debezium.data.Enum, allowed = the labels, comma-separated
//	inet, cidr, macaddr(8)      string
//	bit(1), bit varying(1)      boolean
//	bit(n), bit varying         bytes, the bits little-endian io.debezium.data.Bits, length = n (2147483647 unbounded)
//	point                       record {x, y, wkb, srid}      io.debezium.data.geometry.Point
//	box, lseg, path, polygon    record {wkb, srid, extensions} io.debezium.data.geometry.Geometry (version 2)
//	circle                      record {center Point, radius} io.debezium.data.geometry.Circle
//	line                        record {a, b, c}              io.debezium.data.geometry.Line
//	tsvector                    string                        io.debezium.data.Tsvector
//	T[] (one dimension)         array, items ["null", T]
//	anything else               string, PostgreSQL's text form
//
// A nullable column is ["null", T] with default null; a Geometry, Circle or
// Line column is nullable whatever the column says, as Debezium's schemas
// of them are optional. Domains map as their base types.
//
// The geometric records carry what Debezium's PostgresValueConverter makes
// of PostgreSQL's values: a point's coordinates and its well-known binary
// (little-endian, no SRID); a box as the polygon of its four corners from its
// first (closed ring), an lseg and a path as a line string, a polygon as its
// ring, closed, each with the PostgreSQL type in extensions["type"] and a
// path's extensions["closed"]; a circle's center (a Point) and radius; a
// line's coefficients. A bit string of more than one bit is little-endian:
// the last character of its text is the lowest bit of the first byte, in as
// many bytes as its highest set bit needs. A timestamp without time zone is read as UTC, as Debezium reads
// it.
//
// With [DecimalHandling] set to [DecimalDouble], numeric and money columns are
// Avro double; with [DecimalString], Avro string as Debezium prints them
// ("-1234.50", but "1E-7" below 10^-6 as Java's BigDecimal.toString writes
// it; NaN and ±Infinity as "NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY").
// Under the default [DecimalPrecise] a NaN or infinite numeric has no exact
// form: it travels as null, as Debezium publishes it. A consumer cannot tell
// that null from SQL NULL, so [SpecialDecimals]([SpecialDecimalReject]) fails
// such a change with a [ValueError] instead (capture sends it to its
// dead-letter topic); in a NOT NULL column it fails either way (Debezium
// stops there).
//
// PostgreSQL's 'infinity' and '-infinity' travel as Debezium's
// PostgresValueConverter sends them: a date as the days -2147472692 and
// -2147472691 (its -5877611-06-21 and -5877611-06-22), a timestamp as
// 9223372036825200000 and -9223372036832400000 µs (pgjdbc's
// PGStatement.DATE_POSITIVE_INFINITY and DATE_NEGATIVE_INFINITY; the same
// instants in ms for timestamp(0..3)), a timestamptz as the strings
// "infinity" and "-infinity". A [Decoder] reads them back as
// [change.Infinity].
//
// A column's DEFAULT, as Debezium's PostgresDefaultValueConverter reads it
// ([change.Column].Default), is the field's Avro default and its type's
// connect.default, as Confluent's AvroConverter writes a Connect default; a
// nullable column with a default is [T, "null"]. A NOT NULL column a change
// does not carry (a key-only before image) holds its default, or else the
// type's fallback (0, "", false, the epoch). A VariableScaleDecimal (a
// record) gets no default, as in Debezium.
//
// Where cdcflow differs from Debezium's defaults: the types Debezium leaves
// out (include.unknown.datatypes=false) travel as strings in PostgreSQL's
// text form; arrays of every element type are
// captured, and their items are nullable (Debezium leaves out arrays of money,
// interval and a few others, and makes enum array items required).
//
// A consumer's [Decoder] reads any of these schemas back into the
// [change.Row] values capture produced; change.Row lists the Go type of each.
//
// # The envelope around the columns
//
// The envelope, its source block and the transaction topic are Debezium
// 3.6's, field for field (names, order, types, optionality, connect.name and
// connect.version, Avro defaults):
//
//   - source is io.debezium.connector.postgresql.Source, connect.version 1:
//     version, connector, name, ts_ms, snapshot, db, sequence, ts_us, ts_ns,
//     schema, table, txId, lsn, xmin, origin, origin_lsn. snapshot is an
//     io.debezium.data.Enum of true, first, first_in_data_collection,
//     last_in_data_collection, last, false, incremental (default false);
//     sequence is ["<end LSN of the last commit before>","<LSN of the change>"]
//     (the first null before capture read a commit); origin and origin_lsn
//     name a transaction's replication origin and its commit LSN there.
//   - source.version is cdcflow's version, not Debezium's. Consumers can rely
//     on it to name the cdcflow release that wrote the record, and on the
//     shape of every record of a cdcflow release being Debezium 3.6's as
//     described here; they should not compare it with Debezium versions.
//   - transaction is event.block, connect.version 1: id ("<txId>:<LSN of the
//     change>"), total_order, data_collection_order, and one field Debezium
//     3.6 does not define: commit_lsn, the LSN of the transaction's commit
//     (optional, last, named as Debezium's proposal DBZ-2353 names it).
//     cdcflow's position of a change is (commit_lsn, total_order); a change
//     without a transaction block (a snapshot read) is at (source.lsn, 0).
//     Tools that read Debezium's schema ignore the extra field.
//   - The transaction topic's key (TransactionMetadataKey) and value
//     (TransactionMetadataValue, with data_collections an optional array of
//     optional event.collection records) are connect.version 1; the id is
//     "<txId>:<LSN>" with the LSN of the transaction's BEGIN on BEGIN and of
//     its end on END records.
package serde
