package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/app"
	"github.com/cdcflow/cdcflow/internal/adminapi"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCaptureAdminAPI runs capture (RunCapture, as cdcflow capture does)
// against the real PostgreSQL, Kafka and registry with its admin API on
// HTTPS, requiring a client certificate and a bearer token from a file, and
// manages it over HTTP only: without the certificate the handshake fails,
// without the token it answers 401, another connector's name 404; its
// status and tables are capture's; a pause holds back the rows inserted
// meanwhile (the committed position does not move), a resume publishes
// them, a restart restarts in place, and a read_committed consumer gets
// every row exactly once. The token shows nowhere in the log.
func TestCaptureAdminAPI(t *testing.T) {
	brokers, registryURL := testenv.KafkaBrokers(t), testenv.RegistryURL(t)
	ca := testenv.Get(testenv.TLSCAVar)
	serverCert, serverKey := testenv.TLSServerCert(t)
	clientCert, clientKey := testenv.TLSClientCert(t)
	const token = "adm1n-t0ken-s3cret"
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, tables := newSource(ctx, t, "admin", "CREATE TABLE %s.parcels (id bigint PRIMARY KEY, status text NOT NULL)")
	stem := src.stem
	for i := 1; i <= 2; i++ {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, 'new')", i)
	}
	addr := testenv.FreeAddr(t)
	cf := app.CaptureFlags{
		PgDSN: testenv.PGDSN(t), Tables: tables, TopicPrefix: stem, Slot: stem, Publication: stem,
		Kafka: app.KafkaFlags{Brokers: brokers}, RegistryURL: registryURL,
		SignalTable: stem + ".signals", IncrementalChunkRows: 2,
		Admin:        app.AdminFlags{Addr: addr, TokenFile: tokenFile, TLSCert: serverCert, TLSKey: serverKey, TLSClientCA: ca},
		SnapshotMode: "initial", DecimalHandlingMode: "precise", SpecialDecimalMode: "null", SkippedOperations: "t",
		CheckpointTopic: "cdcflow.checkpoints", StatusInterval: 200 * time.Millisecond, SlotBusyTimeout: time.Minute,
	}
	logs := &syncWriter{w: &strings.Builder{}}
	done := make(chan error, 1)
	go func() { done <- app.RunCapture(ctx, cf, slog.New(slog.NewTextHandler(logs, nil))) }()

	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	withCert := client(cert)
	base := "https://" + addr + "/connectors"
	call := func(c *http.Client, method, path, bearer string, body ...string) (int, []byte, error) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(strings.Join(body, "")))
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		answer, err := io.ReadAll(res.Body)
		return res.StatusCode, answer, err
	}
	must := func(method, path string, want int, body ...string) []byte {
		t.Helper()
		code, answer, err := call(withCert, method, path, token, body...)
		if err != nil || code != want {
			t.Fatalf("%s %s: %d %s, %v; want %d", method, path, code, answer, err, want)
		}
		return answer
	}
	status := func() adminapi.Status {
		t.Helper()
		var s adminapi.Status
		if err := json.Unmarshal(must(http.MethodGet, "/"+stem+"/status", http.StatusOK), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitFor := func(what string, cond func(s adminapi.Status) bool) adminapi.Status {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			select {
			case err := <-done:
				t.Fatalf("capture ended: %v\n%s", err, logs.String())
			default:
			}
			if code, _, err := call(withCert, http.MethodGet, "/"+stem+"/status", token); err == nil && code == http.StatusOK {
				if s := status(); cond(s) {
					return s
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 60s\n%s", what, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	s := waitFor("streaming", func(s adminapi.Status) bool { return s.Capture.Phase == "streaming" })
	if s.Name != stem || s.Type != "source" || s.Connector.State != "RUNNING" || len(s.Tasks) != 1 || s.Tasks[0].State.State != "RUNNING" ||
		s.Capture.Slot != stem || s.Capture.Snapshot == nil || !s.Capture.Snapshot.Done || s.Capture.Snapshot.Rows != 2 {
		t.Errorf("status after the snapshot: %+v", s)
	}

	// Who may ask.
	if _, _, err := call(client(), http.MethodGet, "/"+stem+"/status", token); err == nil {
		t.Error("a client without a certificate was answered")
	}
	for _, bearer := range []string{"", "not-" + token} {
		code, body, err := call(withCert, http.MethodPut, "/"+stem+"/pause", bearer)
		if err != nil || code != http.StatusUnauthorized || !strings.Contains(string(body), `"error_code":401`) {
			t.Errorf("pause with token %q: %d %s, %v; want 401", bearer, code, body, err)
		}
	}
	if body := must(http.MethodGet, "/other/status", http.StatusNotFound); !strings.Contains(string(body), `"error_code":404`) {
		t.Errorf("another connector: %s", body)
	}
	var names []string
	json.Unmarshal(must(http.MethodGet, "", http.StatusOK), &names)
	var listed struct{ Tables []string }
	json.Unmarshal(must(http.MethodGet, "/"+stem+"/tables", http.StatusOK), &listed)
	if !slices.Equal(names, []string{stem}) || !slices.Equal(listed.Tables, []string{stem + ".parcels"}) {
		t.Errorf("connectors %v, tables %v", names, listed.Tables)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(stem+"."+stem+".parcels"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var records int
	// consume reads until it has want records, or for all of within when
	// exactly is set (no record more than want may come).
	consume := func(want int, within time.Duration, exactly bool) {
		t.Helper()
		fctx, fcancel := context.WithTimeout(ctx, within)
		defer fcancel()
		for (records < want || exactly) && fctx.Err() == nil {
			consumer.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
				if r.Value != nil {
					records++
				}
			})
		}
		if records != want {
			t.Fatalf("%d records, want %d", records, want)
		}
	}
	consume(2, 60*time.Second, false)

	must(http.MethodPut, "/"+stem+"/pause", http.StatusAccepted)
	paused := waitFor("paused", func(s adminapi.Status) bool { return s.Connector.State == "PAUSED" })
	for i := 3; i <= 5; i++ {
		src.exec(t, "INSERT INTO "+stem+".parcels VALUES ($1, 'new')", i)
	}
	consume(2, 3*time.Second, true) // nothing more while paused
	if s := status(); s.Connector.State != "PAUSED" || !s.Capture.Paused || s.Capture.Committed != paused.Capture.Committed {
		t.Errorf("while paused: %+v (committed at the pause %s)", s, paused.Capture.Committed)
	}

	must(http.MethodPut, "/"+stem+"/resume", http.StatusAccepted)
	waitFor("resumed", func(s adminapi.Status) bool { return s.Connector.State == "RUNNING" && !s.Capture.Paused })
	consume(5, 60*time.Second, false)

	must(http.MethodPost, "/"+stem+"/restart", http.StatusAccepted)
	waitFor("restarted", func(s adminapi.Status) bool { return s.Capture.Restarts == 1 && s.Capture.Phase == "streaming" })
	src.exec(t, "INSERT INTO "+stem+".parcels VALUES (6, 'new')")
	consume(6, 60*time.Second, false)
	consume(6, 2*time.Second, true) // and none twice

	// An incremental snapshot, asked for over the API, reads the six rows
	// again, in chunks of two; a signal capture would ignore is refused.
	must(http.MethodPost, "/"+stem+"/signals", http.StatusBadRequest, `{"type": "no-such-signal"}`)
	must(http.MethodPost, "/"+stem+"/signals", http.StatusAccepted,
		`{"type": "execute-snapshot", "data": {"data-collections": ["`+stem+`.parcels"]}}`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got struct{ Snapshots []adminapi.SnapshotTable }
		json.Unmarshal(must(http.MethodGet, "/"+stem+"/snapshots", http.StatusOK), &got)
		if len(got.Snapshots) == 1 && got.Snapshots[0].Done {
			if s := got.Snapshots[0]; s.Table != stem+".parcels" || s.Rows != 6 {
				t.Errorf("incremental snapshot %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incremental snapshots %+v after 60s", got.Snapshots)
		}
		time.Sleep(100 * time.Millisecond)
	}
	consume(12, 60*time.Second, false)

	if strings.Contains(logs.String(), token) {
		t.Error("the log shows the admin token")
	}
	if !strings.Contains(logs.String(), "serving the admin API") {
		t.Errorf("the log does not say where the admin API is:\n%s", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunCapture: %v", err)
	}
}
