// Package testenv finds the real services integration tests run against.
// scripts/services starts them; `scripts/services env` prints the variables
// below. An integration test skips only under `go test -short`; otherwise a
// missing service fails it, naming the variable and the script that fixes it.
package testenv

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The variables tests read, with their defaults (scripts/services' ports).
const (
	PGDSNVar        = "CDCFLOW_PG_DSN"
	PGBadWALDSNVar  = "CDCFLOW_PG_BAD_WAL_DSN"
	KafkaBrokersVar = "CDCFLOW_KAFKA_BROKERS"
	RegistryURLVar  = "CDCFLOW_REGISTRY_URL"
	RedisAddrVar    = "CDCFLOW_REDIS_ADDR"
	ESURLVar        = "CDCFLOW_ES_URL"
)

var defaults = map[string]string{
	PGDSNVar:        "postgres://cdcflow:cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable",
	PGBadWALDSNVar:  "postgres://cdcflow:cdcflow@127.0.0.1:55433/cdcflow?sslmode=disable",
	KafkaBrokersVar: "127.0.0.1:59092",
	RegistryURLVar:  "http://127.0.0.1:58081",
	RedisAddrVar:    "127.0.0.1:56379",
	ESURLVar:        "http://127.0.0.1:59200",
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostPort)
	if err != nil {
		t.Fatalf("%s: nothing listens at %s (%v); start the services with `scripts/services up` and `eval \"$(scripts/services env)\"`, or run go test -short", name, hostPort, err)
	}
	conn.Close()
	return Get(name)
}
