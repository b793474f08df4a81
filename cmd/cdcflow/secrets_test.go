package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestNoPasswordInAnyOutput runs cdcflow capture, cdcflow status and the
// orders demo (capture and the example's processors on package app's
// runner) with a password of its own in each flag that can carry credentials (--pg-dsn, --registry-url,
// --es-url, --redis-addr, --mask-salt, --registry-password, --admin-token), against services that are
// unreachable (nothing listens) and services that refuse the credentials,
// one broken service at a time so that each flag's path is taken, and finds
// none of the passwords in anything the command prints, while it still
// names the service that failed. (A processor binary's own flags, Kafka's
// SASL password among them, are tested in package app.)
func TestNoPasswordInAnyOutput(t *testing.T) {
	dsn, brokers, registry, redisAddr, esURL := testenv.PGDSN(t), testenv.KafkaBrokers(t), testenv.RegistryURL(t), testenv.RedisAddr(t), testenv.ESURL(t)
	cdcflow := buildBinary(t)
	bins := map[string]string{"capture": cdcflow, "status": cdcflow, "run": buildPackage(t, "github.com/cdcflow/cdcflow/examples/orders/cmd/orders-demo")}
	ctx := context.Background()
	stem := fmt.Sprintf("secrets_%d", rand.IntN(1_000_000_000))
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE SCHEMA " + stem,
		"CREATE TABLE " + stem + ".accounts (id int PRIMARY KEY, email text)",
		"INSERT INTO " + stem + ".accounts VALUES (1, 'ada@example.com')",
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		rows, _ := db.Query(ctx, "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1", stem+"%")
		slots, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, slot := range slots {
			testenv.DropSlot(ctx, db, slot)
		}
		rows, _ = db.Query(ctx, "SELECT pubname FROM pg_publication WHERE pubname LIKE $1", stem+"%")
		pubs, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, p := range pubs {
			db.Exec(ctx, "DROP PUBLICATION "+p)
		}
		db.Exec(ctx, "DROP SCHEMA "+stem+" CASCADE")
		db.Close(ctx)
	})

	pw := func(name string) string { return fmt.Sprintf("%s-Pw%d", name, rand.IntN(1_000_000_000)) }
	pgPW, regPW, esPW, redisPW, saltPW, adminPW := pw("pg"), pw("registry"), pw("es"), pw("redis"), pw("salt"), pw("admin")
	passwords := []string{pgPW, regPW, esPW, redisPW, saltPW, adminPW}
	taken, err := net.Listen("tcp", "127.0.0.1:0") // the admin API cannot listen there
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	// Services that refuse: an HTTP server that answers 401 to everything
	// (a registry, an Elasticsearch), the real PostgreSQL and Redis with a
	// wrong password.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error_code":40101,"message":"Unauthorized"}`)
	}))
	defer refusing.Close()
	refusingHost := strings.TrimPrefix(refusing.URL, "http://")
	unreachable := closedPort(t)
	pgHost := hostOfURL(t, dsn)

	pgURL := func(host, password string) string {
		return "postgres://cdcflow:" + password + "@" + host + "/cdcflow?sslmode=disable"
	}
	withPassword := func(raw, user, password string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	goodPG := dsn // the test instance's own password is also its user's name: not a secret to look for
	goodRegistry := withPassword(registry, "registry", regPW)

	type flags map[string]string
	for _, tc := range []struct {
		name    string
		command string
		flags   flags
		says    string // what the output must say about the failure
	}{
		{"capture, PostgreSQL unreachable", "capture", flags{"pg-dsn": pgURL(unreachable, pgPW), "registry-url": goodRegistry}, "connect"},
		{"capture, PostgreSQL refuses the password", "capture", flags{"pg-dsn": pgURL(pgHost, pgPW), "registry-url": goodRegistry}, "password authentication failed"},
		{"capture, registry unreachable", "capture", flags{"pg-dsn": goodPG, "registry-url": "http://registry:" + regPW + "@" + unreachable}, "schema registry unavailable"},
		{"capture, registry refuses", "capture", flags{"pg-dsn": goodPG, "registry-url": "http://registry:" + regPW + "@" + refusingHost}, "schema registry unavailable"},
		{"capture, registry refuses --registry-password", "capture", flags{"pg-dsn": goodPG, "registry-url": refusing.URL, "registry-user": "registry", "registry-password": regPW}, "schema registry unavailable"},
		{"capture, admin API address taken", "capture", flags{"pg-dsn": goodPG, "registry-url": goodRegistry, "admin-addr": taken.Addr().String(), "admin-token": adminPW}, "--admin-addr"},
		{"status, PostgreSQL unreachable", "status", flags{"pg-dsn": pgURL(unreachable, pgPW)}, "PostgreSQL unreachable"},
		{"status, PostgreSQL refuses the password", "status", flags{"pg-dsn": pgURL(pgHost, pgPW)}, "password authentication failed"},
		{"run, Redis unreachable", "run", flags{"pg-dsn": goodPG, "registry-url": goodRegistry, "redis-addr": "redis://default:" + redisPW + "@" + unreachable, "es-url": withPassword(esURL, "elastic", esPW)}, "no Redis answers at --redis-addr"}, // the demo starts a throwaway one
		{"run, Redis refuses", "run", flags{"pg-dsn": goodPG, "registry-url": goodRegistry, "redis-addr": "redis://nobody:" + redisPW + "@" + redisAddr, "es-url": withPassword(esURL, "elastic", esPW)}, "Redis unreachable"},
		{"run, Elasticsearch unreachable", "run", flags{"pg-dsn": goodPG, "registry-url": goodRegistry, "redis-addr": redisAddr, "es-url": "http://elastic:" + esPW + "@" + unreachable}, "Elasticsearch unreachable"},
		{"run, Elasticsearch refuses", "run", flags{"pg-dsn": goodPG, "registry-url": goodRegistry, "redis-addr": redisAddr, "es-url": "http://elastic:" + esPW + "@" + refusingHost}, "401"},
		{"run, PostgreSQL refuses the password", "run", flags{"pg-dsn": pgURL(pgHost, pgPW), "registry-url": goodRegistry, "redis-addr": redisAddr}, "password authentication failed"},
		{"run, registry refuses", "run", flags{"pg-dsn": goodPG, "registry-url": "http://registry:" + regPW + "@" + refusingHost, "redis-addr": redisAddr}, "schema registry unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slot := fmt.Sprintf("%s_%d", stem, rand.IntN(1_000_000))
			args := []string{"--log-level", "debug"}
			if tc.command != "run" {
				args = append(args, tc.command)
			}
			args = append(args, "--slot", slot, "--topic-prefix", slot, "--kafka-brokers", strings.Join(brokers, ","))
			if tc.command != "status" {
				args = append(args, "--tables", stem+".accounts",
					"--mask-columns", stem+".accounts.email", "--mask-salt", saltPW,
					"--publication", slot, "--slot-busy-timeout", "1s")
			}
			if tc.command == "run" {
				args = append(args, "--http-addr", "", "--redis-prefix", slot, "--search-index", slot)
			}
			for name, value := range tc.flags {
				args = append(args, "--"+name+"="+value)
			}
			out := runFor(t, bins[tc.command], 20*time.Second, args...)
			for _, p := range passwords {
				if strings.Contains(out, p) {
					t.Errorf("the output shows password %s:\n%s", p, out)
				}
			}
			if !strings.Contains(out, tc.says) {
				t.Errorf("the output does not say %q:\n%s", tc.says, out)
			}
		})
	}
}

// runFor runs bin with args and returns what it printed (stdout and stderr)
// once it exits, or, when it runs longer than d, once SIGTERM stopped it.
func runFor(t *testing.T, bin string, d time.Duration, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "CDCFLOW_PG_DSN=", "CDCFLOW_REGISTRY_URL=", "CDCFLOW_ES_URL=", "CDCFLOW_REDIS_ADDR=", "CDCFLOW_KAFKA_BROKERS=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	return out.String()
}

// closedPort returns a loopback host:port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func hostOfURL(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
