package kafkaconn

import (
	"fmt"
	"strings"
)

// Mechanism is a SASL mechanism, named as Kafka names it.
type Mechanism string

// The mechanisms cdcflow's clients speak.
const (
	// Plain sends the user and password as they are (RFC 4616): use it only
	// over TLS.
	Plain Mechanism = "PLAIN"
	// ScramSHA256 is SCRAM with SHA-256 (RFC 5802, RFC 7677).
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	// ScramSHA512 is SCRAM with SHA-512.
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

var mechanisms = []Mechanism{Plain, ScramSHA256, ScramSHA512}

// ParseMechanism reads a mechanism name, in any case and with '_' for '-'
// ("scram_sha_512" is SCRAM-SHA-512).
func ParseMechanism(s string) (Mechanism, error) {
	m := Mechanism(strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(s)), "_", "-"))
	if !m.valid() {
		return "", fmt.Errorf("SASL mechanism %q is unknown: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s)
	}
	return m, nil
}

func (m Mechanism) valid() bool {
	for _, k := range mechanisms {
		if m == k {
			return true
		}
	}
	return false
}

// String returns Kafka's name of the mechanism.
func (m Mechanism) String() string { return string(m) }

// MarshalText returns Kafka's name of the mechanism.
func (m Mechanism) MarshalText() ([]byte, error) { return []byte(m), nil }

// UnmarshalText parses a mechanism as [ParseMechanism] does, so that a
// Mechanism can be read from flags, environment variables and config files.
func (m *Mechanism) UnmarshalText(b []byte) error {
	v, err := ParseMechanism(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
