package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/cdcflow/cdcflow/internal/adminapi"
	"github.com/cdcflow/cdcflow/internal/connect"
)

// AdminFlags are the settings of capture's admin API (package
// internal/adminapi: status, pause, resume, restart over HTTP). It is off
// unless an address is given, and then it authenticates its clients with a
// bearer token, client certificates, or both.
type AdminFlags struct {
	Addr        string `name:"addr" help:"Serve the admin API (status, pause, resume, restart, tables; see docs/running.md) on this address, e.g. 127.0.0.1:8083; empty serves none." env:"ADDR"`
	Token       string `name:"token" help:"Bearer token every admin API request must carry; better given in the environment or with the token-file flag." env:"TOKEN" redact:"secret"`
	TokenFile   string `name:"token-file" type:"path" help:"File holding the admin API's bearer token (a mounted secret)." env:"TOKEN_FILE" redact:"file"`
	TLSCert     string `name:"tls-cert" type:"path" help:"PEM server certificate: the admin API serves HTTPS." env:"TLS_CERT"`
	TLSKey      string `name:"tls-key" type:"path" help:"PEM key of the admin API's server certificate." env:"TLS_KEY"`
	TLSClientCA string `name:"tls-client-ca" type:"path" help:"PEM file of the CA certificates whose client certificates the admin API requires (mutual TLS)." env:"TLS_CLIENT_CA"`
}

// config returns the admin API's configuration, reading the token file and
// the TLS files, with every problem at once; ok is false when no address
// is given.
func (a AdminFlags) config() (cfg adminapi.Config, ok bool, err error) {
	if a.Addr == "" {
		if a != (AdminFlags{}) {
			return cfg, false, errors.New("admin API settings are given but --admin-addr is not: set it to serve the API, or drop them")
		}
		return cfg, false, nil
	}
	cfg.Addr, cfg.Token = a.Addr, a.Token
	var errs []error
	if a.TokenFile != "" {
		if a.Token != "" {
			errs = append(errs, errors.New("--admin-token and --admin-token-file are both set: give the token one way"))
		} else if cfg.Token, err = connect.ReadSecret("--admin-token-file", a.TokenFile); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Token == "" && a.TokenFile == "" && a.TLSClientCA == "" {
		errs = append(errs, errors.New("--admin-addr serves an API that pauses and restarts capture, and nothing authenticates its clients: give --admin-token (or --admin-token-file), or --admin-tls-client-ca with --admin-tls-cert and --admin-tls-key"))
	}
	switch {
	case a.TLSCert != "" && a.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("--admin-tls-cert %s, --admin-tls-key %s: %v", a.TLSCert, a.TLSKey, err))
			break
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case a.TLSCert != "" || a.TLSKey != "":
		errs = append(errs, errors.New("only one of --admin-tls-cert and --admin-tls-key is set: give both to serve HTTPS, or neither"))
	}
	if a.TLSClientCA != "" {
		pem, err := os.ReadFile(a.TLSClientCA)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--admin-tls-client-ca: %v", err))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, fmt.Errorf("--admin-tls-client-ca %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", a.TLSClientCA))
		case cfg.TLS == nil && a.TLSCert == "":
			errs = append(errs, errors.New("--admin-tls-client-ca needs --admin-tls-cert and --admin-tls-key: client certificates are checked over HTTPS"))
		case cfg.TLS != nil:
			cfg.TLS.ClientCAs, cfg.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return cfg, true, errors.Join(errs...)
}

// ServeAdmin serves the admin API over the capture, named after its slot,
// as the flags given to NewCapture say, until ctx ends; with no
// --admin-addr it does nothing.
func (p *Published) ServeAdmin(ctx context.Context, log *slog.Logger) error {
	if p.admin == nil {
		return nil
	}
	if p.admin.TLS == nil {
		if host, _, err := net.SplitHostPort(p.admin.Addr); err == nil {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				log.Warn("the admin API serves plain HTTP beyond this host: its bearer token travels unencrypted; give --admin-tls-cert and --admin-tls-key", "addr", p.admin.Addr)
			}
		}
	}
	cfg, name := *p.admin, p.Capture.Status().Slot
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve the admin API on %s: %w; choose another --admin-addr", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLS != nil {
		ln, scheme = tls.NewListener(ln, cfg.TLS), "https"
	}
	log = log.With("component", "admin")
	log.Info("serving the admin API", "url", scheme+"://"+ln.Addr().String()+"/connectors/"+name+"/status",
		"bearer_token", cfg.Token != "", "client_certificates", cfg.TLS != nil && cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert)
	srv := &http.Server{Handler: adminapi.Handler(name, p.Capture, cfg.Token),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)} // refused handshakes
	if err := serveUntil(ctx, srv, ln); err != nil {
		return fmt.Errorf("serve the admin API: %w", err)
	}
	return nil
}
