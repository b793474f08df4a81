// Package recorded reads the records tools/debezium-recorder recorded from
// Debezium's own connectors (topologies/testdata/debezium/<source>.jsonl),
// for the tests that decode and process them: each record's key and value
// in the three forms Kafka Connect writes.
package recorded

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/twmb/franz-go/pkg/sr"
)

// The forms a record's key and value were recorded in.
const (
	Avro       = "avro"            // Confluent's wire format, the schema in the registry
	JSON       = "json"            // JsonConverter, schemas.enable=true
	Schemaless = "json_schemaless" // JsonConverter, schemas.enable=false
)

// Forms are every form, in a fixed order.
var Forms = []string{Avro, JSON, Schemaless}

// Sources are the recorded sources: Debezium's PostgreSQL, MariaDB and
// MongoDB connectors.
var Sources = []string{"postgres", "mariadb", "mongodb"}

// Side is a record's key or value as the recorder stored it.
type Side struct {
	JSON       json.RawMessage `json:"json"`
	Schemaless json.RawMessage `json:"json_schemaless"`
	AvroSchema string          `json:"avro_schema"`
	Avro       []byte          `json:"avro"` // the Avro body, without the wire-format header
}

// Record is one recorded record; a tombstone's Value is nil.
type Record struct {
	Topic string `json:"topic"`
	Key   *Side  `json:"key"`
	Value *Side  `json:"value"`
}

// Load reads the records of source (one of Sources), in the order the
// connector wrote them.
func Load(source string) ([]Record, error) {
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(file), "..", "..", "topologies", "testdata", "debezium", source+".jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", source, len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// Bytes returns r's key and value in form. For Avro it registers the
// recorded schemas in reg under subjects named after topic (which may differ
// from the recorded topic) and writes the wire format.
func (r Record) Bytes(ctx context.Context, reg *sr.Client, topic, form string) (key, value []byte, err error) {
	side := func(s *Side, subject string) ([]byte, error) {
		switch {
		case s == nil:
			return nil, nil
		case form == JSON:
			return s.JSON, nil
		case form == Schemaless:
			return s.Schemaless, nil
		}
		ss, err := reg.CreateSchema(ctx, subject, sr.Schema{Schema: s.AvroSchema})
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", subject, err)
		}
		b := binary.BigEndian.AppendUint32([]byte{0}, uint32(ss.ID))
		return append(b, s.Avro...), nil
	}
	if key, err = side(r.Key, topic+"-key"); err != nil {
		return nil, nil, err
	}
	value, err = side(r.Value, topic+"-value")
	return key, value, err
}
