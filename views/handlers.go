package views

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Errors a [Query] returns to choose the response status. Wrap them with
// fmt.Errorf("...: %w", ErrNotFound) or return them as they are; the
// response's "error" field carries the message.
var (
	// ErrNotFound answers 404 Not Found.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest answers 400 Bad Request: the request names no valid key.
	ErrBadRequest = errors.New("bad request")
)

// requestError is a client-facing error whose message stands on its own,
// without the text of the sentinel it matches.
type requestError struct {
	msg  string
	kind error
}

func (e *requestError) Error() string        { return e.msg }
func (e *requestError) Is(target error) bool { return target == e.kind }

// KeyFunc reads a table key from a request. An error wrapping
// [ErrBadRequest] is the client's (400); any other is the route's (500).
type KeyFunc func(r *http.Request) (string, error)

// PathInt reads the path wildcard {name} as a decimal integer (an int64) and
// returns it in canonical form, so that "/orders/007" finds the key "7".
// Anything else is a bad request.
func PathInt(name string) KeyFunc {
	return func(r *http.Request) (string, error) {
		s, err := pathValue(r, name)
		if err != nil {
			return "", err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return "", &requestError{fmt.Sprintf("%s %q is not a decimal integer", name, s), ErrBadRequest}
		}
		return strconv.FormatInt(n, 10), nil
	}
}

// PathString reads the path wildcard {name} as the key, as it is.
func PathString(name string) KeyFunc {
	return func(r *http.Request) (string, error) { return pathValue(r, name) }
}

func pathValue(r *http.Request, name string) (string, error) {
	if r.Pattern != "" && !strings.Contains(r.Pattern, "{"+name+"}") && !strings.Contains(r.Pattern, "{"+name+"...}") {
		return "", fmt.Errorf("route %q has no path wildcard {%s}", r.Pattern, name)
	}
	s := r.PathValue(name)
	if s == "" {
		return "", &requestError{fmt.Sprintf("%s is empty", name), ErrBadRequest}
	}
	return s, nil
}

// Query serves the value q returns as a JSON document with status 200. An
// error chooses the status: [ErrBadRequest] 400, [ErrNotFound] 404,
// [ErrNotReady] 503 (with Retry-After), anything else 500; the body is then
// {"error": message}, with the message of a 500 withheld from the client
// (a [Server] logs it). q runs on the request's goroutine and may be called
// concurrently.
func Query[T any](q func(r *http.Request) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := q(r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// Getter is a table Lookup and FanOut read: a *[Table] or a
// *[ConsistentTable].
type Getter[V any] interface {
	Topic() string
	Get(key string) (V, bool, error)
}

// Lookup serves the value t holds under the key the request names, 404 if
// there is none.
func Lookup[V any](t Getter[V], key KeyFunc) http.Handler {
	return Query(func(r *http.Request) (V, error) {
		k, err := key(r)
		if err != nil {
			var zero V
			return zero, err
		}
		return lookup(t, k)
	})
}

// FanOut serves a JSON array: it looks up the request's key in index (404 if
// missing), asks keys for the keys the index value lists, and returns the
// values values holds under them, in that order. A listed key values does not
// hold (yet) is left out: the two tables are written independently, so an
// index can run ahead of the table it points into.
//
// For example, a customer index keyed by customer id that lists the
// customer's order ids, fanned out over the order summaries:
//
//	views.FanOut(customers, views.PathInt("id"), CustomerOrders.Keys, summaries)
func FanOut[I, V any](index Getter[I], key KeyFunc, keys func(I) []string, values Getter[V]) http.Handler {
	return Query(func(r *http.Request) ([]V, error) {
		k, err := key(r)
		if err != nil {
			return nil, err
		}
		entry, err := lookup(index, k)
		if err != nil {
			return nil, err
		}
		out := []V{}
		for _, k := range keys(entry) {
			v, ok, err := values.Get(k)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, v)
			}
		}
		return out, nil
	})
}

func lookup[V any](t Getter[V], key string) (V, error) {
	v, ok, err := t.Get(key)
	if err == nil && !ok {
		err = &requestError{fmt.Sprintf("key %q not found in %s", key, t.Topic()), ErrNotFound}
	}
	return v, err
}

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, ErrBadRequest):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, ErrNotReady):
		status, msg = http.StatusServiceUnavailable, err.Error()
		w.Header().Set("Retry-After", "1")
	}
	if rec, ok := w.(*recorder); ok {
		rec.err = err
	}
	writeJSON(w, status, errorBody{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		if rec, ok := w.(*recorder); ok {
			rec.err = fmt.Errorf("encode response: %w", err)
		}
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
