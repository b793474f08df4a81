package testenv

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
)

// TLSProxy serves HTTPS in front of a plain HTTP service, as a
// TLS-terminating proxy of a production deployment would: with the
// services' server certificate, requiring a client certificate signed by
// the services' CA and, when user is not empty, basic auth as user with
// password. It stands in for a TLS listener the service cannot have beside
// its plaintext one (Elasticsearch's integ-test-zip serves one HTTP port, and
// TLS on it needs its security on, for every client). It stops when the test
// ends; URL is its https URL.
type TLSProxy struct {
	URL string
	// Requests counts the requests that reached the service.
	Requests func() int
}

// NewTLSProxy starts a TLS proxy to target, an http URL.
func NewTLSProxy(t testing.TB, target, user, password string) *TLSProxy {
	t.Helper()
	certFile, keyFile := TLSServerCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(existing(t, TLSCAVar))
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(pem)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var requests atomic.Int64
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: clients,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if user != "" {
				u, p, ok := r.BasicAuth()
				if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
					w.Header().Set("WWW-Authenticate", `Basic realm="proxy"`)
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				r.Header.Del("Authorization")
			}
			requests.Add(1)
			proxy.ServeHTTP(w, r)
		}),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are what tests expect
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return &TLSProxy{URL: "https://" + ln.Addr().String(), Requests: func() int { return int(requests.Load()) }}
}
