package serde_test

import (
	"encoding/json"
	"fmt"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
)

// Numeric and money columns travel as Debezium's decimal.handling.mode says:
// an Avro decimal by default, or a double, or a string.
func ExampleDecimalHandling() {
	orders := &change.Table{Schema: "public", Name: "orders", Columns: []change.Column{
		{Name: "id", Type: "int8", TypeMod: -1, Key: true},
		{Name: "amount", Type: "numeric", TypeMod: (10<<16 | 2) + 4}, // numeric(10,2) NOT NULL
	}}
	for _, mode := range []serde.DecimalMode{serde.DecimalPrecise, serde.DecimalDouble, serde.DecimalString} {
		ts, err := serde.NewTableSchemas("shop", orders, serde.DecimalHandling(mode))
		if err != nil {
			panic(err)
		}
		// The envelope's first field, before, is ["null", Value].
		var envelope struct {
			Fields []struct {
				Type json.RawMessage
			}
		}
		var before []json.RawMessage
		var value struct {
			Fields []struct {
				Name string
				Type json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(ts.Envelope), &envelope); err != nil {
			panic(err)
		}
		if err := json.Unmarshal(envelope.Fields[0].Type, &before); err != nil {
			panic(err)
		}
		if err := json.Unmarshal(before[1], &value); err != nil {
			panic(err)
		}
		fmt.Printf("%s: %s\n", mode, value.Fields[1].Type)
	}
	// Output:
	// precise: {"connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"connect.decimal.precision":"10","scale":"2"},"connect.version":1,"logicalType":"decimal","precision":10,"scale":2,"type":"bytes"}
	// double: "double"
	// string: "string"
}
