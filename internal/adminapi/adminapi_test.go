package adminapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestNotRunning: over a capture whose Run is not running, the status says
// it is starting (Kafka Connect's RUNNING) with no tables yet, and pause,
// resume and restart answer 409 with capture's reason as Kafka Connect's
// error body; wrong methods are refused. (TestCaptureAdminAPI in package
// app manages a running capture against the real services.)
func TestNotRunning(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := capture.New(capture.Config{DSN: "postgres://nowhere", Brokers: []string{"127.0.0.1:1"}, Tables: []string{"public.t"}, Slot: "s1"},
		serde.NewEncoder(client, "cdcflow"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler("s1", c, ""))
	defer srv.Close()
	do := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := do(http.MethodGet, "/connectors/s1/status")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != http.StatusOK {
		t.Fatalf("status: %d %s, %v", code, body, err)
	}
	if s.Connector.State != "RUNNING" || s.Capture.Phase != capture.PhaseStarting || s.Capture.Slot != "s1" || s.Capture.Tables == nil ||
		s.Capture.Snapshot != nil || s.Capture.LastCommitTime != nil {
		t.Errorf("status %+v", s)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodPut, "/connectors/s1/pause"}, {http.MethodPut, "/connectors/s1/resume"}, {http.MethodPost, "/connectors/s1/restart"},
	} {
		code, body := do(tc.method, tc.path)
		if code != http.StatusConflict || !strings.Contains(body, `"error_code":409`) || !strings.Contains(body, capture.ErrNotStreaming.Error()) {
			t.Errorf("%s %s: %d %s; want 409", tc.method, tc.path, code, body)
		}
	}
	if code, body := do(http.MethodPost, "/connectors/s1/signals"); code != http.StatusBadRequest || !strings.Contains(body, "is no signal") {
		t.Errorf("a signal without a body: %d %s; want 400", code, body)
	}
	if code, _ := do(http.MethodGet, "/connectors/s1/pause"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET pause: %d, want 405", code)
	}
}

// TestConnectStates maps every phase of a capture to Kafka Connect's states.
func TestConnectStates(t *testing.T) {
	for phase, want := range map[capture.Phase]string{
		capture.PhaseStarting: "RUNNING", capture.PhaseSnapshot: "RUNNING", capture.PhaseStreaming: "RUNNING",
		capture.PhaseRestarting: "RUNNING", capture.PhasePaused: "PAUSED", capture.PhaseFailed: "FAILED", capture.PhaseStopped: "STOPPED",
	} {
		if got := connectState(phase); got != want {
			t.Errorf("%s: %s, want %s", phase, got, want)
		}
	}
}
