package app

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/topologies"
)

type account struct {
	ID    int64
	Email string
}

// searchAccounts is a topology that needs every service: Redis for a
// metric, Elasticsearch for a search index.
func searchAccounts(src Source) *topologies.Topology {
	table := Table[account](src, "accounts")
	return topologies.New("accounts",
		topologies.Metrics(table, func(account) []topologies.Sample {
			return []topologies.Sample{{Series: "accounts", Bucket: "all", Value: 1}}
		}),
		topologies.Index(table, "accounts", func(a account) (string, any) { return fmt.Sprint(a.ID), a }))
}

// TestNoPasswordInAnyOutput runs a processor binary (Main's code, in
// process) with a password of its own in each flag that can carry one
// (--kafka-sasl-password, --registry-url, --redis-addr, --es-url, the
// --*-password flags, their files and variables), against services that
// are unreachable and services that refuse the credentials, one broken at
// a time so that each flag's path is taken: none of the passwords shows in
// anything it prints, and it says which service failed.
func TestNoPasswordInAnyOutput(t *testing.T) {
	brokers, registry, redisAddr, esURL := testenv.KafkaBrokers(t), testenv.RegistryURL(t), testenv.RedisAddr(t), testenv.ESURL(t)
	sasl, redisTLS := testenv.KafkaSASL(t), testenv.RedisTLS(t)
	pw := func(name string) string { return fmt.Sprintf("%s-Pw%d", name, rand.IntN(1_000_000_000)) }
	saslPW, regPW, redisPW, esPW := pw("sasl"), pw("registry"), pw("redis"), pw("es")
	redisFilePW := pw("redis-file")
	redisFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(redisFile, []byte(redisFilePW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	defer refusing.Close()
	refusingHost := strings.TrimPrefix(refusing.URL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := ln.Addr().String()
	ln.Close()
	redisHost := redisAddr
	esHost := strings.TrimPrefix(esURL, "http://")
	regHost := strings.TrimPrefix(registry, "http://")

	good := map[string]string{
		"--kafka-brokers": strings.Join(brokers, ","), "--registry-url": "http://registry:" + regPW + "@" + regHost,
		"--redis-addr": redisHost, "--es-url": "http://elastic:" + esPW + "@" + esHost,
	}
	for _, tc := range []struct {
		name  string
		flags map[string]string
		env   map[string]string
		says  string
	}{
		{"Kafka refuses the SASL password", map[string]string{"--kafka-brokers": strings.Join(sasl.Brokers, ","), "--kafka-tls-ca": sasl.TLS.CAFile,
			"--kafka-sasl-mechanism": string(sasl.SASL.Mechanism), "--kafka-sasl-user": sasl.SASL.User, "--kafka-sasl-password": saslPW}, nil, "Kafka unreachable"},
		{"Kafka unreachable with a SASL password", map[string]string{"--kafka-brokers": unreachable, "--kafka-tls": "true",
			"--kafka-sasl-mechanism": "SCRAM-SHA-512", "--kafka-sasl-user": "u", "--kafka-sasl-password": saslPW}, nil, "Kafka unreachable"},
		{"Redis unreachable", map[string]string{"--redis-addr": "redis://default:" + redisPW + "@" + unreachable}, nil, "Redis unreachable"},
		{"Redis refuses", map[string]string{"--redis-addr": "redis://nobody:" + redisPW + "@" + redisHost}, nil, "Redis unreachable"},
		{"Elasticsearch unreachable", map[string]string{"--es-url": "http://elastic:" + esPW + "@" + unreachable}, nil, "Elasticsearch unreachable"},
		{"Elasticsearch refuses", map[string]string{"--es-url": "http://elastic:" + esPW + "@" + refusingHost}, nil, "401"},
		{"a registry URL that is not one", map[string]string{"--registry-url": "registry:" + regPW + "@" + regHost}, nil, "--registry-url"},
		{"Redis over TLS refuses the password of a file", map[string]string{"--redis-addr": redisTLS.Addr, "--redis-user": redisTLS.User,
			"--redis-password-file": redisFile, "--redis-tls-ca": testenv.Get(testenv.TLSCAVar)}, nil, "Redis unreachable"},
		{"Redis over TLS refuses the password of the environment", map[string]string{"--redis-addr": redisTLS.Addr, "--redis-user": redisTLS.User,
			"--redis-tls-ca": testenv.Get(testenv.TLSCAVar)}, map[string]string{"CDCFLOW_REDIS_PASSWORD": redisPW}, "Redis unreachable"},
		{"Elasticsearch refuses --es-password", map[string]string{"--es-url": refusing.URL, "--es-user": "elastic", "--es-password": esPW}, nil, "401"},
		{"registry credentials given twice", map[string]string{"--registry-password": regPW}, nil, "keep one of them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--http-addr", "", "--log-level", "debug", "--topic-prefix", "nowhere", "--schema", "nowhere"}
			for flag, value := range good {
				if _, broken := tc.flags[flag]; !broken {
					args = append(args, flag+"="+value)
				}
			}
			for flag, value := range tc.flags {
				args = append(args, flag+"="+value)
			}
			clearEnv(t)
			for name, value := range tc.env {
				t.Setenv(name, value)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, "accounts", args, stdin{}, &out, &out, []TopologyFunc{searchAccounts})
			for _, p := range []string{saslPW, regPW, redisPW, esPW, redisFilePW} {
				if strings.Contains(out.String(), p) {
					t.Errorf("the output shows password %s:\n%s", p, out.String())
				}
			}
			if code != 1 || !strings.Contains(out.String(), tc.says) {
				t.Errorf("exit %d, want 1 and a line saying %q:\n%s", code, tc.says, out.String())
			}
		})
	}
}

// clearEnv unsets the CDCFLOW_* variables for the test, so that only its
// flags configure the binary.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CDCFLOW_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// TestNoPasswordInTheCommandsOutput runs status, verify and reset with a
// password of their own in --pg-dsn, --redis-addr, --es-url and
// --kafka-sasl-password, against services that are unreachable or refuse
// the credentials: none of the passwords shows in what they print, and
// each says which service failed.
func TestNoPasswordInTheCommandsOutput(t *testing.T) {
	dsn, brokers, redisAddr, esURL := testenv.PGDSN(t), testenv.KafkaBrokers(t), testenv.RedisAddr(t), testenv.ESURL(t)
	sasl := testenv.KafkaSASL(t)
	pw := func(name string) string { return fmt.Sprintf("%s-Pw%d", name, rand.IntN(1_000_000_000)) }
	pgPW, redisPW, esPW, saslPW := pw("pg"), pw("redis"), pw("es"), pw("sasl")
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	defer refusing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := ln.Addr().String()
	ln.Close()
	pgHost := dsn[strings.LastIndex(dsn, "@")+1:]
	pgHost = pgHost[:strings.Index(pgHost, "/")]
	good := map[string]string{"--kafka-brokers": strings.Join(brokers, ","), "--redis-addr": redisAddr, "--es-url": esURL}
	for _, tc := range []struct {
		name  string
		args  []string
		flags map[string]string
		says  string
	}{
		{"status, PostgreSQL unreachable", []string{"status", "--pg-dsn", "postgres://cdcflow:" + pgPW + "@" + unreachable + "/cdcflow"}, nil, "PostgreSQL unreachable"},
		{"status, PostgreSQL refuses", []string{"status", "--pg-dsn", "postgres://cdcflow:" + pgPW + "@" + pgHost + "/cdcflow?sslmode=disable"}, nil, "password authentication failed"},
		{"status, Kafka refuses the SASL password", []string{"status"}, map[string]string{"--kafka-brokers": strings.Join(sasl.Brokers, ","), "--kafka-tls-ca": sasl.TLS.CAFile,
			"--kafka-sasl-mechanism": string(sasl.SASL.Mechanism), "--kafka-sasl-user": sasl.SASL.User, "--kafka-sasl-password": saslPW}, "Kafka unreachable"},
		{"verify, PostgreSQL refuses", []string{"verify", "--pg-dsn", "postgres://cdcflow:" + pgPW + "@" + pgHost + "/cdcflow?sslmode=disable"}, nil, "password authentication failed"},
		{"verify, Redis refuses", []string{"verify", "--pg-dsn", dsn}, map[string]string{"--redis-addr": "redis://nobody:" + redisPW + "@" + redisAddr}, "Redis unreachable"},
		{"reset, Elasticsearch refuses", []string{"reset", "--all", "--yes"}, map[string]string{"--es-url": "http://elastic:" + esPW + "@" + strings.TrimPrefix(refusing.URL, "http://")}, "401"},
		{"reset, Redis unreachable", []string{"reset", "--all", "--yes"}, map[string]string{"--redis-addr": "redis://default:" + redisPW + "@" + unreachable}, "Redis unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			args := append(tc.args, "--log-level", "debug", "--topic-prefix", "nowhere", "--schema", "nowhere", "--group", "nowhere")
			for flag, value := range good {
				if _, broken := tc.flags[flag]; !broken {
					args = append(args, flag+"="+value)
				}
			}
			for flag, value := range tc.flags {
				args = append(args, flag+"="+value)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, "accounts", args, stdin{}, &out, &out, []TopologyFunc{searchAccounts})
			for _, p := range []string{pgPW, redisPW, esPW, saslPW} {
				if strings.Contains(out.String(), p) {
					t.Errorf("the output shows password %s:\n%s", p, out.String())
				}
			}
			if code != 1 || !strings.Contains(out.String(), tc.says) {
				t.Errorf("exit %d, want 1 and a line saying %q:\n%s", code, tc.says, out.String())
			}
		})
	}
}
