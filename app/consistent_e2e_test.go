package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/topologies"
)

// A binary serves a transaction-consistent read model's documents as its
// gate publishes them: GET /read-models/{name}/{key} answers from the
// consistent topic, and /readyz waits for that view.
func TestBinaryServesAConsistentReadModel(t *testing.T) {
	brokers, registryURL := testenv.KafkaBrokers(t), testenv.RegistryURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stem := fmt.Sprintf("consistentapp_%d", rand.IntN(1_000_000_000))
	src := startCapturedSource(ctx, t, stem, brokers, nil,
		"CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	for i := range 10 {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, 'new')", i+1)
	}
	src.exec(t, "UPDATE "+stem+".parcels SET status = 'sent' WHERE id = 7")

	addr := testenv.FreeAddr(t)
	f := app.Flags{Kafka: app.KafkaFlags{Brokers: brokers}, RegistryURL: registryURL, TopicPrefix: stem, Schema: stem,
		Group: stem, HTTPAddr: addr, RetryTimeout: time.Minute}
	logs := &syncWriter{w: &strings.Builder{}}
	runDone := make(chan error, 1)
	go func() {
		runDone <- app.Run(ctx, f, slog.New(slog.NewTextHandler(logs, nil)), func(src app.Source) *topologies.Topology {
			table := app.Table[parcel](src, "parcels")
			return topologies.New("parcels", topologies.ReadModel[parcelView]("parcel",
				topologies.Root(table, func(p parcel) string { return fmt.Sprint(p.ID) },
					func(v *parcelView, p parcel) { v.ID, v.Status = p.ID, p.Status }),
				topologies.Consistent[parcelView]()))
		})
	}()
	get := func(path string) (int, string) { return httpGet("http://" + addr + path) }
	deadline := time.Now().Add(90 * time.Second)
	for {
		ready, readiness := get("/readyz")
		code, body := get("/read-models/parcel/7")
		if ready == http.StatusOK && code == http.StatusOK && strings.Contains(body, `"status":"sent"`) {
			if !strings.Contains(readiness, "-parcel-consistent") {
				t.Fatalf("/readyz names no consistent view: %s", readiness)
			}
			break
		}
		select {
		case err := <-runDone:
			t.Fatalf("Run returned: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: /readyz %d %s, /read-models/parcel/7 %d %s; the log:\n%s", ready, readiness, code, body, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := get("/read-models/parcel/999"); code != http.StatusNotFound {
		t.Errorf("a missing parcel: %d, want 404", code)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-src.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}
