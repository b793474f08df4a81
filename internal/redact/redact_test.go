package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"postgres URL", "postgres://app:s3cret@db:5432/shop?sslmode=require", "postgres://app:xxxxx@db:5432/shop?sslmode=require"},
		{"encoded password", "http://reg:p%40ss%2Fw@registry:8081/", "http://reg:xxxxx@registry:8081/"},
		{"redis without user", "rediss://:tok3n@cache:6380/0", "rediss://:xxxxx@cache:6380/0"},
		{"user only", "http://alice@es:9200", "http://alice@es:9200"},
		{"key/value DSN", "host=db user=app password=s3cret dbname=shop", "host=db user=app password=xxxxx dbname=shop"},
		{"quoted key/value", "host=db password='s3 cr\\'et' dbname=shop", "host=db password=xxxxx dbname=shop"},
		{"password in a query", "postgres://db/shop?user=app&password=s3cret&sslmode=disable", "postgres://db/shop?user=app&password=xxxxx&sslmode=disable"},
		{"quoted by a library", `unable to POST "http://u:pw@127.0.0.1:1/subjects/x/versions": dial tcp`, `unable to POST "http://u:xxxxx@127.0.0.1:1/subjects/x/versions": dial tcp`},
		{"no URL", "connection refused", "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := URL(tc.in); got != tc.want {
				t.Errorf("URL(%q)\n = %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSecretsMaskKnownSecretsAnywhere(t *testing.T) {
	var s Secrets
	s.AddURL("postgres://app:pg-S3cret@db/shop")
	s.AddURL("http://reg:r%40g-pw@registry:8081")
	s.Add("sasl-Pa55", "")
	s.AddURL("registry:no-Scheme-pw@host:8081")
	for _, tc := range []struct{ in, want string }{
		{"SCRAM failed for pg-S3cret", "SCRAM failed for xxxxx"},
		{"basic auth r@g-pw rejected, or r%40g-pw", "basic auth xxxxx rejected, or xxxxx"},
		{"sasl: bad password sasl-Pa55", "sasl: bad password xxxxx"},
		{"bad URL registry:no-Scheme-pw@host:8081", "bad URL registry:xxxxx@host:8081"},
		{"dial http://x:other@h:1", "dial http://x:xxxxx@h:1"}, // a URL password nobody added
	} {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAddURLLeavesPublicNamesAlone(t *testing.T) {
	var s Secrets
	s.AddURL("postgres://cdcflow:cdcflow@127.0.0.1:55432/cdcflow")
	s.AddURL("host=h user=shop password=shop dbname=x")
	in := "slot=cdcflow topic_prefix=cdcflow user=shop dsn=postgres://cdcflow:cdcflow@127.0.0.1:55432/cdcflow"
	want := "slot=cdcflow topic_prefix=cdcflow user=shop dsn=postgres://cdcflow:xxxxx@127.0.0.1:55432/cdcflow"
	if got := s.String(in); got != want {
		t.Errorf("String(%q)\n = %q\nwant %q", in, got, want)
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	var s Secrets
	s.Add("hunter22")
	err := s.Error(fmt.Errorf("open with hunter22: %w", fs.ErrPermission))
	if err.Error() != "open with xxxxx: permission denied" || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Error = %q (Is ErrPermission: %t)", err, errors.Is(err, fs.ErrPermission))
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestHandlerAndWriter(t *testing.T) {
	var s Secrets
	s.Add("hunter22")
	var buf bytes.Buffer
	logger := slog.New(s.Handler(slog.NewTextHandler(&buf, nil))).With("dsn", "postgres://u:hunter22@h/d")
	logger.Info("connecting with hunter22", "err", errors.New("auth hunter22 failed"),
		slog.Group("registry", "url", "http://u:pw2@r"), "n", 7)
	log.New(s.Writer(&buf), "", 0).Print("library says hunter22")
	out := buf.String()
	for _, leak := range []string{"hunter22", "pw2"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q leaked:\n%s", leak, out)
		}
	}
	for _, kept := range []string{"n=7", "registry.url=http://u:xxxxx@r", "library says xxxxx"} {
		if !strings.Contains(out, kept) {
			t.Errorf("want %q in:\n%s", kept, out)
		}
	}
}

// TestCollectReadsSecretFiles: the secret a redact:"file" setting names is
// masked, as a redact:"secret" one is.
func TestCollectReadsSecretFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte("fi1e-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := struct {
		Inline string `redact:"secret"`
		Nested struct {
			File    string `redact:"file"`
			Missing string `redact:"file"`
		}
	}{Inline: "in1ine-secret"}
	settings.Nested.File, settings.Nested.Missing = path, "/nonexistent/password"
	var s Secrets
	Collect(reflect.ValueOf(settings), &s)
	if got := s.String("a fi1e-secret and an in1ine-secret"); got != "a xxxxx and an xxxxx" {
		t.Errorf("masked: %q", got)
	}
}
