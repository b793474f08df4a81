package app

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/internal/testenv"
)

// TestAdminFlags: the admin API is off without an address, refuses to
// serve without a way to authenticate its clients, and reports each
// mistake in its settings by the flag that names it, all at once.
func TestAdminFlags(t *testing.T) {
	dir := t.TempDir()
	tokenFile, notPEM := filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")
	os.WriteFile(tokenFile, []byte(" t0ken\n"), 0o600)
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cert, key := testenv.TLSServerCert(t)
	ca := testenv.Get(testenv.TLSCAVar)
	for _, tc := range []struct {
		name  string
		flags AdminFlags
		want  []string // in the error; none: no error
	}{
		{"off", AdminFlags{}, nil},
		{"settings without an address", AdminFlags{Token: "x"}, []string{"--admin-addr is not"}},
		{"no authentication", AdminFlags{Addr: "127.0.0.1:0"}, []string{"nothing authenticates its clients", "--admin-token"}},
		{"a token twice", AdminFlags{Addr: "127.0.0.1:0", Token: "x", TokenFile: tokenFile}, []string{"both set"}},
		{"a missing token file", AdminFlags{Addr: "127.0.0.1:0", TokenFile: filepath.Join(dir, "none")}, []string{"--admin-token-file", "no such file"}},
		{"a certificate without its key, a CA that is none", AdminFlags{Addr: "127.0.0.1:0", TLSCert: cert, TLSClientCA: notPEM},
			[]string{"only one of --admin-tls-cert and --admin-tls-key", "--admin-tls-client-ca " + notPEM + " holds no PEM certificate"}},
		{"client certificates over plain HTTP", AdminFlags{Addr: "127.0.0.1:0", TLSClientCA: ca}, []string{"needs --admin-tls-cert"}},
		{"a token file", AdminFlags{Addr: "127.0.0.1:0", TokenFile: tokenFile}, nil},
		{"mutual TLS", AdminFlags{Addr: "127.0.0.1:0", TLSCert: cert, TLSKey: key, TLSClientCA: ca}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, on, err := tc.flags.config()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if on != (tc.flags.Addr != "") {
					t.Errorf("served: %v", on)
				}
				if tc.flags.TokenFile != "" && cfg.Token != "t0ken" {
					t.Errorf("token %q, want the file's, trimmed", cfg.Token)
				}
				if tc.flags.TLSClientCA != "" && (cfg.TLS == nil || cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert) {
					t.Errorf("TLS %+v: client certificates not required", cfg.TLS)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to say %q", err, w)
				}
			}
		})
	}
}
