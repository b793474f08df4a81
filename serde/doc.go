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
//	T[] (one dimension)         array, items ["null", T]
//	anything else               string, PostgreSQL's text form
//
// A nullable column is ["null", T] with default null. Domains map as their
// base types. A timestamp without time zone is read as UTC, as Debezium reads
// it.
//
// With [DecimalHandling] set to [DecimalDouble], numeric and money columns are
// Avro double; with [DecimalString], Avro string as Debezium prints them
// ("-1234.50", but "1E-7" below 10^-6 as Java's BigDecimal.toString writes
// it; NaN and ±Infinity as "NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY").
// Under the default [DecimalPrecise] a NaN or infinite numeric has no exact
// form: encoding it fails with a [ValueError] (Debezium stops there; capture
// sends the change to its dead-letter topic).
//
// Where cdcflow differs from Debezium's defaults: geometric types (which
// Debezium writes as io.debezium.data.geometry structs), bit strings
// and the types Debezium leaves out (include.unknown.datatypes=false) travel
// as strings in PostgreSQL's text form; arrays of every element type are
// captured, and their items are nullable (Debezium leaves out arrays of money,
// interval and a few others, and makes enum array items required).
//
// A consumer's [Decoder] reads any of these schemas back into the
// [change.Row] values capture produced; change.Row lists the Go type of each.
package serde
