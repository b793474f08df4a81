package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Options are what reaching a service takes besides its address:
// credentials given apart from the URL (from a flag, the environment or a
// file), and TLS.
type Options struct {
	// User and Password authenticate: basic auth to the schema registry and
	// Elasticsearch, AUTH (an ACL user) to Redis. Credentials in the URL do
	// the same; giving both is an error.
	User, Password string
	// TLS, when not nil, encrypts the connection: Redis's with it, the
	// registry's and Elasticsearch's when their URL is https (an http URL
	// with TLS settings is an error).
	TLS *tls.Config
}

// TLSFiles are the PEM files of a client's TLS: the CA certificates that
// verify the server (empty: the system's roots) and a client certificate
// and its key, for servers that authenticate clients (mutual TLS).
type TLSFiles struct {
	CA, Cert, Key string
}

// Empty reports whether f names no file.
func (f TLSFiles) Empty() bool { return f == TLSFiles{} }

// Config returns the TLS configuration f describes, TLS 1.2 at least. It
// reads the files and reports every problem with them at once, naming the
// settings as setting+"-ca", setting+"-cert" and setting+"-key" (setting
// "--redis-tls" names --redis-tls-ca, ...).
func (f TLSFiles) Config(setting string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s-ca %s: %v; give the PEM file of the CA that signed the server's certificate", setting, f.CA, unwrapPath(err)))
		default:
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("%s-ca %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", setting, f.CA))
			}
		}
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-cert %s, %s-key %s: %v", setting, f.Cert, setting, f.Key, unwrapPath(err)))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	case f.Cert != "":
		errs = append(errs, fmt.Errorf("%s-cert is set but %s-key is not: give both for a client certificate, or neither", setting, setting))
	case f.Key != "":
		errs = append(errs, fmt.Errorf("%s-key is set but %s-cert is not: give both for a client certificate, or neither", setting, setting))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ReadSecret returns the secret in the file path, its surrounding white
// space trimmed, naming setting in the error.
func ReadSecret(setting, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s %s: %v", setting, path, unwrapPath(err))
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", setting, path)
	}
	return s, nil
}
