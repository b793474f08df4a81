package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cdcflow/cdcflow/internal/redact"
)

// Config is how a cdcflow client reaches Kafka. The zero value is invalid: it
// has no brokers. A Config is a plain value, safe to copy and to share
// between goroutines; the methods read it and never change it.
type Config struct {
	// Brokers are the bootstrap servers, host:port. The client learns the
	// rest of the cluster from them, so each advertised listener must use
	// the same security as these.
	Brokers []string
	// TLS, when not nil, encrypts every connection and verifies the brokers.
	TLS *TLS
	// SASL, when not nil, authenticates every connection.
	SASL *SASL
}

// TLS configures the TLS of the connections to the brokers. The zero value
// verifies the brokers against the system's roots.
type TLS struct {
	// CAFile is a PEM file of the CA certificates that verify the brokers;
	// empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mutual TLS). Both or
	// neither.
	CertFile string
	KeyFile  string
	// ServerName is the name checked against every broker's certificate;
	// empty means each broker's own host, as dialed.
	ServerName string
	// InsecureSkipVerify accepts any certificate the brokers show: the
	// connection is encrypted but not authenticated. For tests only.
	InsecureSkipVerify bool
}

// SASL is the SASL authentication of every connection.
type SASL struct {
	Mechanism Mechanism
	User      string
	// Password is masked by every String method of this package and never
	// quoted in an error.
	Password string
}

// String describes the SASL settings with the password masked.
func (s SASL) String() string {
	pw := ""
	if s.Password != "" {
		pw = redact.Mask
	}
	return fmt.Sprintf("sasl=%s user=%s password=%s", s.Mechanism, s.User, pw)
}

// GoString is String, so that %#v masks the password too.
func (s SASL) GoString() string { return s.String() }

// String describes c with the password masked, e.g.
// "brokers=k1:9093,k2:9093 tls=on ca=/etc/kafka/ca.pem sasl=SCRAM-SHA-512 user=cdcflow password=xxxxx".
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("brokers=" + strings.Join(c.Brokers, ","))
	if c.TLS == nil {
		b.WriteString(" tls=off")
	} else {
		b.WriteString(" tls=on")
		if c.TLS.CAFile != "" {
			b.WriteString(" ca=" + c.TLS.CAFile)
		}
		if c.TLS.CertFile != "" {
			b.WriteString(" cert=" + c.TLS.CertFile)
		}
		if c.TLS.ServerName != "" {
			b.WriteString(" server-name=" + c.TLS.ServerName)
		}
		if c.TLS.InsecureSkipVerify {
			b.WriteString(" insecure-skip-verify")
		}
	}
	if c.SASL == nil {
		b.WriteString(" sasl=off")
	} else {
		b.WriteString(" " + c.SASL.String())
	}
	return b.String()
}

// GoString is String, so that %#v masks the password too.
func (c Config) GoString() string { return c.String() }

// Secrets returns what a log redactor should mask: the SASL password, if any.
func (c Config) Secrets() []string {
	if c.SASL == nil || c.SASL.Password == "" {
		return nil
	}
	return []string{c.SASL.Password}
}

// Validate reports every problem with c at once. It reads the TLS files, so
// a missing or unreadable one is reported here, by path, before any
// connection is made.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty: list the Kafka bootstrap servers as host:port"))
	}
	for i, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			errs = append(errs, fmt.Errorf("Brokers[%d] %q %w", i, b, err))
		}
	}
	if _, err := c.TLSConfig(); err != nil {
		errs = append(errs, err)
	}
	if c.SASL != nil {
		errs = append(errs, c.SASL.validate(c.TLS != nil)...)
	}
	return errors.Join(errs...)
}

func checkBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return errors.New("is not host:port")
	}
	if host == "" {
		return errors.New("has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has no port between 1 and 65535")
	}
	return nil
}

func (s *SASL) validate(withTLS bool) []error {
	var errs []error
	switch {
	case s.Mechanism == "":
		errs = append(errs, errors.New("SASL.Mechanism is empty: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
	case !s.Mechanism.valid():
		errs = append(errs, fmt.Errorf("SASL.Mechanism %q is unknown: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", string(s.Mechanism)))
	case s.Mechanism == Plain && !withTLS:
		errs = append(errs, errors.New("SASL.Mechanism PLAIN sends the password unencrypted: set TLS, or use SCRAM-SHA-512"))
	}
	if s.User == "" {
		errs = append(errs, errors.New("SASL.User is empty: set the user SASL authenticates as"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("SASL.Password is empty: set the password of SASL.User"))
	}
	return errs
}

// TLSConfig returns the crypto/tls configuration of c.TLS (nil, nil when TLS
// is off), with TLS 1.2 at least. It reads the CA and certificate files on
// each call and reports every problem with them at once.
func (c Config) TLSConfig() (*tls.Config, error) {
	t := c.TLS
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // documented as for tests only
	}
	var errs []error
	if t.CAFile != "" {
		pool, err := readCAs(t.CAFile)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("TLS.CertFile %q, TLS.KeyFile %q: %w", t.CertFile, t.KeyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	case t.CertFile != "":
		errs = append(errs, fmt.Errorf("TLS.CertFile %q is set but TLS.KeyFile is empty: set both for a client certificate, or neither", t.CertFile))
	case t.KeyFile != "":
		errs = append(errs, fmt.Errorf("TLS.KeyFile %q is set but TLS.CertFile is empty: set both for a client certificate, or neither", t.KeyFile))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

func readCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("TLS.CAFile %q does not exist: give the PEM file of the CA that signed the brokers' certificates", path)
		}
		return nil, fmt.Errorf("TLS.CAFile %q: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("TLS.CAFile %q holds no PEM certificate: give the CA certificate in PEM (-----BEGIN CERTIFICATE-----)", path)
	}
	return pool, nil
}
