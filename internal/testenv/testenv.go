// Package testenv finds the real services integration tests run against.
// scripts/services starts them; `scripts/services env` prints the variables
// below. An integration test skips only under `go test -short`; otherwise a
// missing service fails it, naming the variable and the script that fixes it.
package testenv

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/kafkaconn"
)

// The variables tests read, with their defaults (scripts/services' ports).
const (
	PGDSNVar        = "CDCFLOW_PG_DSN"
	PGBadWALDSNVar  = "CDCFLOW_PG_BAD_WAL_DSN"
	KafkaBrokersVar = "CDCFLOW_KAFKA_BROKERS"
	RegistryURLVar  = "CDCFLOW_REGISTRY_URL"
	RedisAddrVar    = "CDCFLOW_REDIS_ADDR"
	ESURLVar        = "CDCFLOW_ES_URL"

	// TLS and SASL (scripts/SERVICES.md, "TLS and SASL").
	PGTLSDSNVar           = "CDCFLOW_PG_TLS_DSN"
	KafkaSASLBrokersVar   = "CDCFLOW_TEST_KAFKA_SASL_BROKERS"
	KafkaSASLMechanismVar = "CDCFLOW_TEST_KAFKA_SASL_MECHANISM"
	KafkaSASLUserVar      = "CDCFLOW_TEST_KAFKA_SASL_USER"
	KafkaSASLPasswordVar  = "CDCFLOW_TEST_KAFKA_SASL_PASSWORD"
	TLSCAVar              = "CDCFLOW_TLS_CA"
	TLSClientCertVar      = "CDCFLOW_TLS_CLIENT_CERT"
	TLSClientKeyVar       = "CDCFLOW_TLS_CLIENT_KEY"
	TLSServerCertVar      = "CDCFLOW_TEST_TLS_SERVER_CERT"
	TLSServerKeyVar       = "CDCFLOW_TEST_TLS_SERVER_KEY"
	RedisTLSAddrVar       = "CDCFLOW_TEST_REDIS_TLS_ADDR"
	RedisUserVar          = "CDCFLOW_TEST_REDIS_USER"
	RedisPasswordVar      = "CDCFLOW_TEST_REDIS_PASSWORD"
	RegistryTLSURLVar     = "CDCFLOW_TEST_REGISTRY_TLS_URL"
	RegistryUserVar       = "CDCFLOW_TEST_REGISTRY_USER"
	RegistryPasswordVar   = "CDCFLOW_TEST_REGISTRY_PASSWORD"
)

var defaults = map[string]string{
	PGDSNVar:        "postgres://cdcflow:cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable",
	PGBadWALDSNVar:  "postgres://cdcflow:cdcflow@127.0.0.1:55433/cdcflow?sslmode=disable",
	KafkaBrokersVar: "127.0.0.1:59092",
	RegistryURLVar:  "http://127.0.0.1:58081",
	RedisAddrVar:    "127.0.0.1:56379",
	ESURLVar:        "http://127.0.0.1:59200",

	KafkaSASLBrokersVar:   "127.0.0.1:59094",
	KafkaSASLMechanismVar: "SCRAM-SHA-512",
	KafkaSASLUserVar:      "cdcflow",
	RedisTLSAddrVar:       "127.0.0.1:16380",
	RedisUserVar:          "cdcflow",
	RegistryTLSURLVar:     "https://127.0.0.1:18082",
	RegistryUserVar:       "cdcflow",
}

// servicesDefaults are the defaults that point into what scripts/services
// generated: its directory is $CDCFLOW_SVC_DIR, else .services in the
// module's root.
var servicesDefaults = map[string]func(dir string) string{
	TLSCAVar:             func(dir string) string { return filepath.Join(dir, "tls", "ca.pem") },
	TLSClientCertVar:     func(dir string) string { return filepath.Join(dir, "tls", "client.pem") },
	TLSClientKeyVar:      func(dir string) string { return filepath.Join(dir, "tls", "client.key") },
	TLSServerCertVar:     func(dir string) string { return filepath.Join(dir, "tls", "server.pem") },
	TLSServerKeyVar:      func(dir string) string { return filepath.Join(dir, "tls", "server.key") },
	KafkaSASLPasswordVar: func(dir string) string { return readSecret(dir, "kafka-sasl-password") },
	RedisPasswordVar:     func(dir string) string { return readSecret(dir, "redis-password") },
	RegistryPasswordVar:  func(dir string) string { return readSecret(dir, "registry-password") },
	PGTLSDSNVar: func(dir string) string {
		return "postgres://cdcflow:cdcflow@127.0.0.1:55432/cdcflow?sslmode=verify-full&sslrootcert=" +
			filepath.Join(dir, "tls", "ca.pem")
	},
}

// readSecret returns the secret scripts/services generated into
// <dir>/secrets/name, "" when there is none.
func readSecret(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, "secrets", name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// servicesDir is where scripts/services keeps what it generates.
func servicesDir() string {
	if d := os.Getenv("CDCFLOW_SVC_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ".services"
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".services")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ".services"
		}
		dir = parent
	}
}

// Integration marks t as an integration test: skipped under -short.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs without -short, against scripts/services")
	}
}

// Get returns the variable's value, or its default.
func Get(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	if f, ok := servicesDefaults[name]; ok {
		return f(servicesDir())
	}
	return defaults[name]
}

// PGDSN returns the PostgreSQL DSN (wal_level=logical instance).
func PGDSN(t testing.TB) string { return reachable(t, PGDSNVar, hostOfURL(Get(PGDSNVar))) }

// PGBadWALDSN returns the DSN of the instance running with wal_level=replica.
func PGBadWALDSN(t testing.TB) string {
	return reachable(t, PGBadWALDSNVar, hostOfURL(Get(PGBadWALDSNVar)))
}

// KafkaBrokers returns the Kafka bootstrap servers.
func KafkaBrokers(t testing.TB) []string {
	v := reachable(t, KafkaBrokersVar, strings.Split(Get(KafkaBrokersVar), ",")[0])
	return strings.Split(v, ",")
}

// RegistryURL returns the schema registry's base URL.
func RegistryURL(t testing.TB) string {
	return reachable(t, RegistryURLVar, hostOfURL(Get(RegistryURLVar)))
}

// RedisAddr returns the Redis address.
func RedisAddr(t testing.TB) string { return reachable(t, RedisAddrVar, Get(RedisAddrVar)) }

// ESURL returns Elasticsearch's base URL.
func ESURL(t testing.TB) string { return reachable(t, ESURLVar, hostOfURL(Get(ESURLVar))) }

// PGTLSDSN returns the DSN of the wal_level=logical instance over TLS,
// sslmode=verify-full against the services' CA.
func PGTLSDSN(t testing.TB) string {
	t.Helper()
	dsn := reachable(t, PGTLSDSNVar, hostOfURL(Get(PGTLSDSNVar)))
	existing(t, TLSCAVar)
	return dsn
}

// KafkaSASL returns the settings of Kafka's SASL_SSL listener: its brokers,
// TLS verified by the services' CA, and SCRAM (CDCFLOW_TEST_KAFKA_SASL_MECHANISM,
// default SCRAM-SHA-512) as the services' user. It fails the test, naming
// the variable to set, when the listener does not answer or a setting is
// missing.
func KafkaSASL(t testing.TB) kafkaconn.Config {
	t.Helper()
	Integration(t)
	brokers := strings.Split(Get(KafkaSASLBrokersVar), ",")
	if err := dial(brokers[0]); err != nil {
		t.Fatalf("%s: nothing listens at %s (%v); start Kafka with `scripts/services up kafka` (a broker started by an older scripts/services lacks this listener: `scripts/services down kafka && scripts/services up kafka`) and `eval \"$(scripts/services env)\"`, or run go test -short", KafkaSASLBrokersVar, brokers[0], err)
	}
	mech, err := kafkaconn.ParseMechanism(Get(KafkaSASLMechanismVar))
	if err != nil {
		t.Fatalf("%s: %v", KafkaSASLMechanismVar, err)
	}
	password := Get(KafkaSASLPasswordVar)
	if password == "" {
		t.Fatalf("%s is not set and %s does not exist; set it with `eval \"$(scripts/services env)\"`", KafkaSASLPasswordVar, filepath.Join(servicesDir(), "secrets", "kafka-sasl-password"))
	}
	return kafkaconn.Config{
		Brokers: brokers,
		TLS:     &kafkaconn.TLS{CAFile: existing(t, TLSCAVar)},
		SASL:    &kafkaconn.SASL{Mechanism: mech, User: Get(KafkaSASLUserVar), Password: password},
	}
}

// Secured is a service's listener that needs TLS and a user: its address (a
// host:port or a URL), and the user and password scripts/services gave it.
type Secured struct {
	Addr, User, Password string
}

// RedisTLS returns Redis's TLS listener (the services' server certificate,
// client certificates checked when offered) and its ACL user.
func RedisTLS(t testing.TB) Secured {
	t.Helper()
	addr := reachableFixing(t, RedisTLSAddrVar, Get(RedisTLSAddrVar), "scripts/services up redis")
	return Secured{Addr: addr, User: Get(RedisUserVar), Password: secretOf(t, RedisPasswordVar, "redis-password")}
}

// RegistryTLS returns the schema registry that speaks HTTPS only, requires
// a client certificate signed by the services' CA, and basic auth.
func RegistryTLS(t testing.TB) Secured {
	t.Helper()
	url := reachableFixing(t, RegistryTLSURLVar, hostOfURL(Get(RegistryTLSURLVar)), "scripts/services up registry")
	return Secured{Addr: url, User: Get(RegistryUserVar), Password: secretOf(t, RegistryPasswordVar, "registry-password")}
}

// TLSServerCert returns the server certificate and key files scripts/services
// made (for 127.0.0.1 and localhost, signed by the services' CA), for tests
// that serve TLS themselves.
func TLSServerCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return existing(t, TLSServerCertVar), existing(t, TLSServerKeyVar)
}

// secretOf returns the variable's value, failing the test when neither it
// nor the secret file scripts/services writes exists.
func secretOf(t testing.TB, name, file string) string {
	t.Helper()
	v := Get(name)
	if v == "" {
		t.Fatalf("%s is not set and %s does not exist; set it with `eval \"$(scripts/services env)\"`", name, filepath.Join(servicesDir(), "secrets", file))
	}
	return v
}

// reachableFixing is reachable for a listener an older scripts/services did
// not start: the error names the command that adds it.
func reachableFixing(t testing.TB, name, hostPort, fix string) string {
	t.Helper()
	Integration(t)
	if err := dial(hostPort); err != nil {
		t.Fatalf("%s: nothing listens at %s (%v); run `%s` (it adds the listener to services an older scripts/services started) and `eval \"$(scripts/services env)\"`, or run go test -short", name, hostPort, err, fix)
	}
	return Get(name)
}

// TLSClientCert returns the client certificate and key files scripts/services
// made (CN=cdcflow, signed by the services' CA), for mutual TLS.
func TLSClientCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	return existing(t, TLSClientCertVar), existing(t, TLSClientKeyVar)
}

// existing returns the path in the variable name, failing the test when no
// file is there.
func existing(t testing.TB, name string) string {
	t.Helper()
	Integration(t)
	path := Get(name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s: %v; `scripts/services up` creates it, then `eval \"$(scripts/services env)\"`", name, err)
	}
	return path
}

func hostOfURL(u string) string {
	rest := u[strings.Index(u, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func reachable(t testing.TB, name, hostPort string) string {
	t.Helper()
	Integration(t)
	if err := dial(hostPort); err != nil {
		t.Fatalf("%s: nothing listens at %s (%v); start the services with `scripts/services up` and `eval \"$(scripts/services env)\"`, or run go test -short", name, hostPort, err)
	}
	return Get(name)
}

// dial checks that something accepts TCP connections at hostPort.
func dial(hostPort string) error {
	if hostPort == "" {
		return errors.New("no address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return err
	}
	return conn.Close()
}

// FreeAddr returns a loopback address nothing listens on, for a server a
// test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
