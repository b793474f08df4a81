// Package redact keeps credentials out of what cdcflow prints: log lines,
// errors (its own and those of the client libraries it uses), and the last
// line a command prints before it exits.
//
// Two layers work together. URL strips the password from one URL or DSN, for
// the places that show where a service is. A Secrets holds every secret the
// configuration carries (the password of each URL and DSN, SASL passwords,
// salts) and replaces each of them, wherever it appears in a text, with
// "xxxxx"; it also masks the password of any URL it finds, configured or not.
// Its Handler wraps a slog.Handler, its Writer an io.Writer (for libraries
// that log through the standard library's log package), its Error an error.
package redact

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "xxxxx"

var (
	// userinfo matches the password part of scheme://user:password@ in a
	// URL; the password may not hold '@', '/' or a space (a URL encodes
	// them).
	userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"'<>]*:)([^@/\s"'<>]+)@`)
	// keyword matches password=... in a PostgreSQL key/value DSN or a URL's
	// query, quoted or not.
	keyword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'"]+)`)
	// bareUserinfo matches user:password@ at the start of a URL given
	// without its scheme.
	bareUserinfo = regexp.MustCompile(`^([^:/@\s]+):([^@/\s]+)@`)
	// publicKeyword matches user=... and dbname=... in a key/value DSN.
	publicKeyword = regexp.MustCompile(`(?i)(\b(?:user|dbname)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'"]+)`)
)

// URL returns raw, a URL or a PostgreSQL DSN (URL or key/value form), with
// its password masked.
func URL(raw string) string { return patterns(raw) }

func patterns(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
	return keyword.ReplaceAllString(s, "${1}"+Mask)
}

// Password returns the password in raw, a URL or a PostgreSQL DSN, as it is
// written there and decoded; none for a raw without one.
func Password(raw string) []string {
	var out []string
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
	}
	if m := userinfo.FindStringSubmatch(raw); m != nil {
		out = append(out, m[2])
	} else if m := bareUserinfo.FindStringSubmatch(raw); m != nil {
		out = append(out, m[2]) // user:password@host, the scheme left out
	}
	for _, m := range keyword.FindAllStringSubmatch(raw, -1) {
		out = append(out, strings.Trim(m[2], "'"))
	}
	return out
}

// Secrets replaces known secrets, and URL passwords, in text. The zero value
// masks URL passwords only; it is safe for concurrent use.
type Secrets struct {
	mu      sync.RWMutex
	secrets []string // longest first, so that no secret is left half masked
}

// Add adds secrets to mask, as they are and URL-encoded; empty strings are
// ignored.
func (s *Secrets) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range secrets {
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if form != "" && !slices.Contains(s.secrets, form) {
				s.secrets = append(s.secrets, form)
			}
		}
	}
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
}

// AddURL adds the password of raw, a URL or a PostgreSQL DSN. A password
// equal to the user name or the database name of raw is not added: those
// are shown openly (in log lines, as the user or the database), so masking
// could not hide it, and would mask every mention of them; the password in
// raw itself is still masked wherever raw appears.
func (s *Secrets) AddURL(raw string) {
	public := map[string]bool{}
	if u, err := url.Parse(raw); err == nil {
		public[u.User.Username()] = true
		public[strings.TrimPrefix(u.Path, "/")] = true
	}
	for _, m := range publicKeyword.FindAllStringSubmatch(raw, -1) {
		public[strings.Trim(m[2], "'")] = true
	}
	for _, pw := range Password(raw) {
		if !public[pw] {
			s.Add(pw)
		}
	}
}

// String returns text with every secret and every URL password masked.
func (s *Secrets) String(text string) string {
	if s == nil {
		return patterns(text)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, Mask)
	}
	return patterns(text)
}

// Error returns err with its text redacted; errors.Is and errors.As see
// through it to err. It returns nil for a nil err.
func (s *Secrets) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, text: s.String(err.Error())}
}

type redacted struct {
	err  error
	text string
}

func (r *redacted) Error() string { return r.text }
func (r *redacted) Unwrap() error { return r.err }

// Writer returns a writer that redacts what it writes to w. It expects each
// Write to hold whole lines, as loggers write them.
func (s *Secrets) Writer(w io.Writer) io.Writer { return writer{s, w} }

type writer struct {
	s *Secrets
	w io.Writer
}

func (w writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.s.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Handler returns a slog.Handler that redacts the message and every
// attribute value (errors and other values as their text) before h handles
// them.
func (s *Secrets) Handler(h slog.Handler) slog.Handler { return handler{s, h} }

type handler struct {
	s *Secrets
	h slog.Handler
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	for i, a := range attrs {
		attrs[i] = h.attr(a)
	}
	return handler{h.s, h.h.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.s, h.h.WithGroup(name)} }

func (h handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.s.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var text string
		if err, ok := v.Any().(error); ok {
			text = err.Error()
		} else {
			text = v.String()
		}
		if red := h.s.String(text); red != text {
			return slog.String(a.Key, red)
		}
	}
	return a
}
