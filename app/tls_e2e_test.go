package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestEverythingOverTLS runs capture and a processor binary's runner, set
// up as a user sets them up with flags, against TLS everywhere but Kafka's
// plaintext listener (its SASL_SSL one has a test of its own): PostgreSQL
// with sslmode=verify-full, the schema registry that requires a client
// certificate and basic auth (the password in a file), Redis's TLS listener
// as its ACL user (the password in a file) and Elasticsearch behind a
// TLS-terminating proxy that requires a client certificate and basic auth.
// The rows reach the metrics and the search index, and no password shows
// in the log.
func TestEverythingOverTLS(t *testing.T) {
	reg, rt := testenv.RegistryTLS(t), testenv.RedisTLS(t)
	brokers, esURL := testenv.KafkaBrokers(t), testenv.ESURL(t)
	ca := testenv.Get(testenv.TLSCAVar)
	cert, key := testenv.TLSClientCert(t)
	const esUser, esPassword = "elastic", "es-pr0xy-s3cret"
	proxy := testenv.NewTLSProxy(t, esURL, esUser, esPassword)
	secret := func(name, value string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	registry := app.ClientFlags{User: reg.User, PasswordFile: secret("registry-password", reg.Password), TLSCA: ca, TLSCert: cert, TLSKey: key}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, tables := newSource(ctx, t, "tls", "CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	stem := src.stem
	index := strings.ReplaceAll(stem, "_", "-") + "-parcels"
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, esURL+"/"+index, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	cf := app.CaptureFlags{
		PgDSN: testenv.PGTLSDSN(t), Tables: tables, TopicPrefix: stem, Slot: stem, Publication: stem,
		Kafka: app.KafkaFlags{Brokers: brokers}, RegistryURL: reg.Addr, Registry: registry,
		SnapshotMode: "initial", DecimalHandlingMode: "precise", SpecialDecimalMode: "null", SkippedOperations: "t",
		CheckpointTopic: "cdcflow.checkpoints", StatusInterval: 200 * time.Millisecond, SlotBusyTimeout: time.Minute,
	}
	p, err := cf.NewCapture(log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src.run(ctx, t, p.Capture)
	for i := range 10 {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, $2)", i+1, []string{"new", "sent"}[i%2])
	}

	f := app.Flags{
		Kafka:       app.KafkaFlags{Brokers: brokers},
		RegistryURL: reg.Addr, Registry: registry,
		RedisAddr: rt.Addr, Redis: app.ClientFlags{User: rt.User, PasswordFile: secret("redis-password", rt.Password), TLSCA: ca},
		ESURL: proxy.URL, ES: app.ClientFlags{User: esUser, Password: esPassword, TLSCA: ca, TLSCert: cert, TLSKey: key},
		RedisPrefix: stem, TopicPrefix: stem, Schema: stem, Group: stem, RetryTimeout: time.Minute,
	}
	runDone := make(chan error, 1)
	go func() { runDone <- app.Run(ctx, f, log, parcelsIndexed(index)) }()

	plain := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer plain.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		m, _ := plain.HGetAll(ctx, stem+":parcels:per_status").Result()
		docs := countDocs(esURL, index)
		if m["new"] == "5" && m["sent"] == "5" && docs == 10 {
			t.Logf("over TLS: metrics %v, %d documents, %d requests through the Elasticsearch proxy", m, docs, proxy.Requests())
			break
		}
		select {
		case err := <-runDone:
			t.Fatalf("Run: %v\n%s", err, logs.String())
		case err := <-src.done:
			t.Fatalf("capture: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("over TLS: metrics %v, %d documents after 90s\n%s", m, docs, logs.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The schemas are in the TLS registry, not in the plaintext one.
	if c, err := p.RegistryClient(); err != nil {
		t.Fatal(err)
	} else if subjects, err := c.Subjects(ctx); err != nil || !slices.Contains(subjects, stem+"."+stem+".parcels-value") {
		t.Errorf("subjects of the TLS registry: %v (%v)", subjects, err)
	}
	for _, pw := range []string{reg.Password, rt.Password, esPassword} {
		if strings.Contains(logs.String(), pw) {
			t.Errorf("the log shows a password")
		}
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-src.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}
