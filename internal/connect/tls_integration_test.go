package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/twmb/franz-go/pkg/sr"
)

// servicesTLS returns the services' CA and client certificate as TLSFiles.
func servicesTLS(t *testing.T) TLSFiles {
	cert, key := testenv.TLSClientCert(t)
	return TLSFiles{CA: testenv.Get(testenv.TLSCAVar), Cert: cert, Key: key}
}

func tlsConfig(t *testing.T, f TLSFiles) *tls.Config {
	t.Helper()
	tc, err := f.Config("--test-tls")
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestRedisOverTLS connects to the services' Redis TLS listener as its ACL
// user, verified by the services' CA, with and without a client
// certificate; a wrong password, a plaintext client and an unknown CA are
// refused, with errors that name the setting and not the password.
func TestRedisOverTLS(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx := context.Background()
	full, caOnly := servicesTLS(t), TLSFiles{CA: testenv.Get(testenv.TLSCAVar)}
	for name, files := range map[string]TLSFiles{"client certificate": full, "CA only": caOnly} {
		rdb, err := Redis(ctx, "--redis-addr", r.Addr, Options{User: r.User, Password: r.Password, TLS: tlsConfig(t, files)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text()
		if err != nil || who != r.User {
			t.Errorf("%s: ACL WHOAMI = %q, %v; want %s", name, who, err, r.User)
		}
		rdb.Close()
	}
	// The same as a URL: rediss://user:password@host, with the CA.
	rdb, err := Redis(ctx, "--redis-addr", fmt.Sprintf("rediss://%s:%s@%s/0", r.User, r.Password, r.Addr), Options{TLS: tlsConfig(t, caOnly)})
	if err != nil {
		t.Fatalf("rediss URL: %v", err)
	}
	rdb.Close()

	otherCA := writeOtherCA(t)
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"wrong password", Options{User: r.User, Password: "not-" + r.Password, TLS: tlsConfig(t, caOnly)}, "WRONGPASS"},
		{"no TLS", Options{User: r.User, Password: r.Password}, "Redis unreachable"},
		{"an unknown CA", Options{User: r.User, Password: r.Password, TLS: tlsConfig(t, TLSFiles{CA: otherCA})}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			rdb, err := Redis(ctx, "--redis-addr", r.Addr, tc.o)
			if err == nil {
				rdb.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--redis-addr") || strings.Contains(err.Error(), r.Password) {
				t.Errorf("error %q: want it to say %q and --redis-addr, without the password", err, tc.want)
			}
		})
	}
}

// TestRegistryOverTLSWithBasicAuth registers and reads a schema in the
// services' TLS registry, which requires a client certificate and basic
// auth; without either it is refused, and the error shows no password.
func TestRegistryOverTLSWithBasicAuth(t *testing.T) {
	r := testenv.RegistryTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subject := fmt.Sprintf("connect-tls-%d-value", time.Now().UnixNano())
	schema := sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`, Type: sr.TypeAvro}

	reg, err := Registry("--registry-url", r.Addr, Options{User: r.User, Password: r.Password, TLS: tlsConfig(t, servicesTLS(t))})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := reg.CreateSchema(ctx, subject, schema)
	if err != nil {
		t.Fatalf("register over TLS with basic auth: %v", err)
	}
	got, err := reg.SchemaByID(ctx, ss.ID)
	if err != nil || !strings.Contains(got.Schema, `"name":"R"`) {
		t.Fatalf("schema %d: %+v, %v", ss.ID, got, err)
	}
	// Credentials in the URL are the same basic auth.
	u := strings.Replace(r.Addr, "https://", fmt.Sprintf("https://%s:%s@", r.User, r.Password), 1)
	if reg, err = Registry("--registry-url", u, Options{TLS: tlsConfig(t, servicesTLS(t))}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SchemaByID(ctx, ss.ID); err != nil {
		t.Errorf("with credentials in the URL: %v", err)
	}

	caOnly := TLSFiles{CA: testenv.Get(testenv.TLSCAVar)}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no basic auth", Options{TLS: tlsConfig(t, servicesTLS(t))}, "401"},
		{"wrong password", Options{User: r.User, Password: "not-" + r.Password, TLS: tlsConfig(t, servicesTLS(t))}, "401"},
		// TLS 1.3 tells the client its certificate is missing after the
		// handshake: it reads the server's alert, or a closed connection.
		{"no client certificate", Options{User: r.User, Password: r.Password, TLS: tlsConfig(t, caOnly)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := Registry("--registry-url", r.Addr, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = reg.SchemaByID(ctx, ss.ID)
			if err == nil {
				t.Fatal("the registry answered")
			}
			var re *sr.ResponseError
			if !strings.Contains(err.Error(), tc.want) && !(errors.As(err, &re) && strings.Contains(fmt.Sprint(re.StatusCode), tc.want)) {
				t.Errorf("error %q, want it to say %s", err, tc.want)
			}
			if strings.Contains(err.Error(), r.Password) {
				t.Errorf("the error shows the password: %q", err)
			}
		})
	}
	if _, err := Registry("--registry-url", "http://127.0.0.1:1", Options{TLS: tlsConfig(t, caOnly)}); err == nil || !strings.Contains(err.Error(), "make it https") {
		t.Errorf("TLS settings with an http URL: %v", err)
	}
	if _, err := Registry("--registry-url", u, Options{User: "x"}); err == nil || !strings.Contains(err.Error(), "keep one of them") {
		t.Errorf("credentials in the URL and apart: %v", err)
	}
}

// TestElasticsearchOverTLS reaches the services' Elasticsearch through a
// TLS-terminating proxy that requires a client certificate and basic auth:
// with both the cluster answers; without the certificate, or with a wrong
// password, it does not.
func TestElasticsearchOverTLS(t *testing.T) {
	proxy := testenv.NewTLSProxy(t, testenv.ESURL(t), "elastic", "es-s3cret")
	ctx := context.Background()
	es, shown, err := Elasticsearch(ctx, "--es-url", proxy.URL, Options{User: "elastic", Password: "es-s3cret", TLS: tlsConfig(t, servicesTLS(t))})
	if err != nil {
		t.Fatal(err)
	}
	if es == nil || shown != proxy.URL || proxy.Requests() == 0 {
		t.Errorf("client %v shown as %s, %d requests through the proxy", es, shown, proxy.Requests())
	}
	caOnly := TLSFiles{CA: testenv.Get(testenv.TLSCAVar)}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no client certificate", Options{User: "elastic", Password: "es-s3cret", TLS: tlsConfig(t, caOnly)}, "Elasticsearch unreachable"},
		{"wrong password", Options{User: "elastic", Password: "wrong", TLS: tlsConfig(t, servicesTLS(t))}, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Elasticsearch(ctx, "--es-url", proxy.URL, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "es-s3cret") {
				t.Errorf("error %v, want it to say %q without the password", err, tc.want)
			}
		})
	}
}

// TestTLSFilesName: a bad TLS setting is reported by the flag that names
// it, every one at once.
func TestTLSFilesName(t *testing.T) {
	_, err := TLSFiles{CA: "/nonexistent/ca.pem", Cert: "/nonexistent/c.pem"}.Config("--redis-tls")
	for _, want := range []string{"--redis-tls-ca /nonexistent/ca.pem: no such file", "--redis-tls-cert is set but --redis-tls-key is not"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// writeOtherCA writes a CA certificate that signed none of the services'
// certificates, and returns its path.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
