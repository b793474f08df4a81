package serde

import "fmt"

// DecimalMode is how numeric and money columns travel: Debezium's
// decimal.handling.mode setting.
type DecimalMode int

const (
	// DecimalPrecise writes numeric(p,s) and money as Avro bytes with logical
	// type decimal (org.apache.kafka.connect.data.Decimal) and numeric without
	// a declared scale as io.debezium.data.VariableScaleDecimal. Exact; the
	// default, as in Debezium. A numeric NaN or ±Infinity has no precise form:
	// encoding it fails with a [ValueError], as Debezium fails.
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
	for _, m := range []DecimalMode{DecimalPrecise, DecimalDouble, DecimalString} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("decimal handling mode %q is not one of precise, double, string", s)
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

// EncoderOpt configures how an [Encoder], or [NewTableSchemas], maps columns
// to Avro. The defaults are Debezium's defaults.
type EncoderOpt func(*encoderConfig)

type encoderConfig struct {
	decimal DecimalMode
}

// DecimalHandling sets how numeric and money columns travel (Debezium's
// decimal.handling.mode). Default [DecimalPrecise].
func DecimalHandling(m DecimalMode) EncoderOpt {
	return func(c *encoderConfig) { c.decimal = m }
}

func newEncoderConfig(opts []EncoderOpt) (encoderConfig, error) {
	var c encoderConfig
	for _, o := range opts {
		o(&c)
	}
	return c, c.decimal.validate()
}
