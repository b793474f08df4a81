// Package adminapi is the HTTP API that manages a running capture: its
// status, pause, resume and restart, the tables it captures, signals and
// incremental snapshots. It follows
// Kafka Connect's REST API where that makes sense: the capture is the one
// connector of its process, named after its replication slot, under
// /connectors/{name}; pause and resume are PUTs and restart a POST that
// answer 202 Accepted at once (the status tells when the capture obeyed);
// errors are JSON {"error_code": <status>, "message": "..."}.
//
//	GET  /connectors                  ["<name>"]
//	GET  /connectors/{name}/status    Kafka Connect's status, with "capture": the figures of capture.Status
//	GET  /connectors/{name}/tables    {"name": "<name>", "tables": ["schema.table", ...]}
//	PUT  /connectors/{name}/pause     202; 409 when the capture is not running
//	PUT  /connectors/{name}/resume    202; 409 when the capture is not running
//	POST /connectors/{name}/restart   202; 409 when the capture is not running
//	POST /connectors/{name}/signals   {"type": "execute-snapshot", "data": {...}}: a signal, as a row of the
//	                                  signalling table (Debezium's); 202 once committed, 400 when capture would ignore it
//	GET  /connectors/{name}/snapshots the incremental snapshots: to do, running and done
//
// Every request must carry the bearer token the handler was given, when it
// was given one (401 otherwise); client certificates are the server's
// business (see [Config]).
package adminapi

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/cdcflow/cdcflow/capture"
	"github.com/cdcflow/cdcflow/change"
)

// Capture is what the API manages: a *capture.Capture. Its methods are
// safe to call from any goroutine and do not block on the capture's loop.
type Capture interface {
	Status() capture.Status
	Pause() error
	Resume() error
	Restart() error
	Signal(ctx context.Context, typ, data string) error
	IncrementalSnapshots() []capture.IncrementalProgress
}

// Handler returns the API over c, the connector name. With a token, every
// request must carry "Authorization: Bearer <token>". It is safe for
// concurrent use.
func Handler(name string, c Capture, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /connectors", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []string{name})
	})
	one := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if got := r.PathValue("name"); got != name {
				writeError(w, http.StatusNotFound, "Connector "+got+" not found; this process runs "+name)
				return
			}
			h(w, r)
		})
	}
	one("GET /connectors/{name}/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, statusOf(name, c.Status()))
	})
	one("GET /connectors/{name}/tables", func(w http.ResponseWriter, _ *http.Request) {
		tables := c.Status().Tables
		if tables == nil {
			tables = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "tables": tables})
	})
	one("POST /connectors/{name}/signals", func(w http.ResponseWriter, r *http.Request) {
		var sig struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&sig); err != nil {
			writeError(w, http.StatusBadRequest, "the body is no signal: send {\"type\": \"execute-snapshot\", \"data\": {\"data-collections\": [\"public.orders\"]}} ("+err.Error()+")")
			return
		}
		data := string(sig.Data)
		if data == "null" {
			data = ""
		}
		if err := c.Signal(r.Context(), sig.Type, data); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	one("GET /connectors/{name}/snapshots", func(w http.ResponseWriter, _ *http.Request) {
		list := []SnapshotTable{}
		for _, p := range c.IncrementalSnapshots() {
			list = append(list, SnapshotTable{Table: p.Table, Filter: p.Filter, Reason: p.Reason, Rows: p.Rows, Estimate: p.Estimate,
				Running: p.Running, Done: p.Done, Stopped: p.Stopped})
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "snapshots": list})
	})
	for pattern, do := range map[string]func() error{
		"PUT /connectors/{name}/pause":    c.Pause,
		"PUT /connectors/{name}/resume":   c.Resume,
		"POST /connectors/{name}/restart": c.Restart,
	} {
		one(pattern, func(w http.ResponseWriter, _ *http.Request) {
			if err := do(); err != nil {
				status := http.StatusInternalServerError
				if errors.Is(err, capture.ErrNotStreaming) {
					status = http.StatusConflict
				}
				writeError(w, status, err.Error())
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
	}
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cdcflow capture"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <the capture's admin token>")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Status is the answer of GET /connectors/{name}/status: Kafka Connect's
// connector status, and Capture, the figures capture reports.
type Status struct {
	Name      string       `json:"name"`
	Connector State        `json:"connector"`
	Tasks     []TaskState  `json:"tasks"`
	Type      string       `json:"type"`
	Capture   CaptureState `json:"capture"`
}

// State is a Kafka Connect state: RUNNING, PAUSED, FAILED or STOPPED, and
// the worker (host) it runs on.
type State struct {
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	// Trace is why it failed (FAILED).
	Trace string `json:"trace,omitempty"`
}

// TaskState is a task's State: capture is one task, 0.
type TaskState struct {
	ID int `json:"id"`
	State
}

// CaptureState is capture.Status in JSON.
type CaptureState struct {
	Phase          capture.Phase   `json:"phase"`
	Paused         bool            `json:"paused"`
	Error          string          `json:"error,omitempty"`
	Slot           string          `json:"slot"`
	Publication    string          `json:"publication"`
	TopicPrefix    string          `json:"topic_prefix"`
	Tables         []string        `json:"tables"`
	ConfirmedLSN   change.LSN      `json:"confirmed_lsn"`
	ServerLSN      change.LSN      `json:"server_lsn"`
	LagBytes       int64           `json:"lag_bytes"`
	Committed      change.Position `json:"committed"`
	LastCommitTime *time.Time      `json:"last_commit_time"`
	Snapshot       *SnapshotState  `json:"snapshot"`
	DeadLettered   int64           `json:"dead_lettered"`
	Skipped        int64           `json:"skipped"`
	Restarts       int             `json:"restarts"`
}

// SnapshotTable is capture.IncrementalProgress in JSON: one table's
// incremental snapshot.
type SnapshotTable struct {
	Table    string `json:"table"`
	Filter   string `json:"filter,omitempty"`
	Reason   string `json:"reason"`
	Rows     int64  `json:"rows"`
	Estimate int64  `json:"estimated_rows"`
	Running  bool   `json:"running"`
	Done     bool   `json:"done"`
	Stopped  bool   `json:"stopped"`
}

// SnapshotState is capture.SnapshotProgress in JSON.
type SnapshotState struct {
	Tables        []string  `json:"tables"`
	Rows          int64     `json:"rows"`
	EstimatedRows int64     `json:"estimated_rows"`
	Started       time.Time `json:"started"`
	Done          bool      `json:"done"`
}

// connectState maps a capture's phase to Kafka Connect's states.
func connectState(p capture.Phase) string {
	switch p {
	case capture.PhasePaused:
		return "PAUSED"
	case capture.PhaseFailed:
		return "FAILED"
	case capture.PhaseStopped:
		return "STOPPED"
	default: // starting, snapshot, streaming, restarting
		return "RUNNING"
	}
}

func statusOf(name string, s capture.Status) Status {
	host, _ := os.Hostname()
	state := State{State: connectState(s.Phase), WorkerID: host, Trace: s.Error}
	cs := CaptureState{
		Phase: s.Phase, Paused: s.Paused, Error: s.Error,
		Slot: s.Slot, Publication: s.Publication, TopicPrefix: s.TopicPrefix, Tables: s.Tables,
		ConfirmedLSN: s.ConfirmedLSN, ServerLSN: s.ServerLSN, LagBytes: s.LagBytes, Committed: s.Committed,
		DeadLettered: s.DeadLettered, Skipped: s.Skipped, Restarts: s.Restarts,
	}
	if cs.Tables == nil {
		cs.Tables = []string{}
	}
	if !s.LastCommitTime.IsZero() {
		t := s.LastCommitTime
		cs.LastCommitTime = &t
	}
	if p := s.Snapshot; p != nil {
		cs.Snapshot = &SnapshotState{Tables: p.Tables, Rows: p.Rows, EstimatedRows: p.EstimatedRows, Started: p.Started, Done: p.Done}
	}
	return Status{Name: name, Connector: state, Tasks: []TaskState{{ID: 0, State: state}}, Type: "source", Capture: cs}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"error_code": status, "message": message})
}

// Config is where and how the API is served.
type Config struct {
	// Addr is the host:port to listen on.
	Addr string
	// Token, when not empty, is the bearer token every request must carry.
	Token string
	// TLS, when not nil, serves HTTPS: its certificate, and ClientCAs with
	// tls.RequireAndVerifyClientCert for mutual TLS.
	TLS *tls.Config
}
