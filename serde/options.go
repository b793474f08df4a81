package serde

import (
	"errors"
	"fmt"
)

// DecimalMode is how numeric and money columns travel: Debezium's
// decimal.handling.mode setting.
type DecimalMode int

const (
	// DecimalPrecise writes numeric(p,s) and money as Avro bytes with logical
	// type decimal (org.apache.kafka.connect.data.Decimal) and numeric without
	// a declared scale as io.debezium.data.VariableScaleDecimal. Exact; the
	// default, as in Debezium. A numeric NaN or ±Infinity has no precise form:
	// [SpecialDecimals] says what becomes of it.
	DecimalPrecise DecimalMode = iota
	// DecimalDouble writes them as Avro double: the nearest float64.
	DecimalDouble
	// DecimalString writes them as Avro string, as Debezium prints them:
	// numerics as Java's BigDecimal.toString does, "-1234.50" (and "1E-7"
	// below 10^-6), with the column's scale; money in plain notation; NaN
	// and ±Infinity as "NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY".
	DecimalString
)

// String returns Debezium's name for m: precise, double or string.
func (m DecimalMode) String() string {
	switch m {
	case DecimalPrecise:
		return "precise"
	case DecimalDouble:
		return "double"
	case DecimalString:
		return "string"
	}
	return fmt.Sprintf("DecimalMode(%d)", int(m))
}

// ParseDecimalMode parses Debezium's name of a decimal.handling.mode.
func ParseDecimalMode(s string) (DecimalMode, error) {
	if m, ok := parseMode(s, DecimalPrecise, DecimalDouble, DecimalString); ok {
		return m, nil
	}
	return 0, fmt.Errorf("decimal handling mode %q is not one of precise, double, string", s)
}

// parseMode returns the one of modes named s.
func parseMode[M interface {
	comparable
	String() string
}](s string, modes ...M) (M, bool) {
	for _, m := range modes {
		if s == m.String() {
			return m, true
		}
	}
	var zero M
	return zero, false
}

// MarshalText implements encoding.TextMarshaler.
func (m DecimalMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, so that a DecimalMode
// can be a flag or a configuration field.
func (m *DecimalMode) UnmarshalText(b []byte) error {
	v, err := ParseDecimalMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

func (m DecimalMode) validate() error {
	if _, err := ParseDecimalMode(m.String()); err != nil {
		return err
	}
	return nil
}

// SpecialDecimalMode is what becomes of a numeric NaN or ±Infinity under
// [DecimalPrecise], which has no form for them.
type SpecialDecimalMode int

const (
	// SpecialDecimalNull writes null, as Debezium's PostgreSQL connector
	// publishes them; the default. A consumer cannot tell such a null from
	// SQL NULL. In a NOT NULL column null has no place either: encoding
	// fails with a [ValueError] (capture sends the change to its
	// dead-letter topic; Debezium stops).
	SpecialDecimalNull SpecialDecimalMode = iota
	// SpecialDecimalReject fails every such change with a [ValueError], so
	// that capture sends it to its dead-letter topic instead of publishing
	// a null that would read as SQL NULL: for tables where a NaN or an
	// infinity is data a consumer must not lose silently.
	SpecialDecimalReject
)

// String returns the mode's name: null or reject.
func (m SpecialDecimalMode) String() string {
	switch m {
	case SpecialDecimalNull:
		return "null"
	case SpecialDecimalReject:
		return "reject"
	}
	return fmt.Sprintf("SpecialDecimalMode(%d)", int(m))
}

// ParseSpecialDecimalMode parses null or reject.
func ParseSpecialDecimalMode(s string) (SpecialDecimalMode, error) {
	if m, ok := parseMode(s, SpecialDecimalNull, SpecialDecimalReject); ok {
		return m, nil
	}
	return 0, fmt.Errorf("special decimal mode %q is not one of null, reject", s)
}

// EncoderOpt configures how an [Encoder], or [NewTableSchemas], maps columns
// to Avro. The defaults are Debezium's defaults.
type EncoderOpt func(*encoderConfig)

type encoderConfig struct {
	decimal DecimalMode
	special SpecialDecimalMode
}

// DecimalHandling sets how numeric and money columns travel (Debezium's
// decimal.handling.mode). Default [DecimalPrecise].
func DecimalHandling(m DecimalMode) EncoderOpt {
	return func(c *encoderConfig) { c.decimal = m }
}

// SpecialDecimals sets what becomes of a numeric NaN or ±Infinity under
// [DecimalPrecise]. Default [SpecialDecimalNull], as Debezium.
func SpecialDecimals(m SpecialDecimalMode) EncoderOpt {
	return func(c *encoderConfig) { c.special = m }
}

func newEncoderConfig(opts []EncoderOpt) (encoderConfig, error) {
	var c encoderConfig
	for _, o := range opts {
		o(&c)
	}
	_, specialErr := ParseSpecialDecimalMode(c.special.String())
	return c, errors.Join(c.decimal.validate(), specialErr)
}
