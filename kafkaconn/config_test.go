package kafkaconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

const secret = "s3cret-Pa55word"

// testPKI writes a CA certificate and a client certificate it signed, with
// its key, as PEM files into a temporary directory.
func testPKI(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkaconn test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", leafDER), write("client.key", "PRIVATE KEY", keyDER)
}

func TestValidate(t *testing.T) {
	ca, cert, key := testPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-ca.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokers := []string{"127.0.0.1:9093"}
	scram := func(m Mechanism, user, password string) *SASL {
		return &SASL{Mechanism: m, User: user, Password: password}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error, one per problem; none: valid
	}{
		{name: "plaintext", cfg: Config{Brokers: brokers}},
		{name: "tls with system roots", cfg: Config{Brokers: brokers, TLS: &TLS{}}},
		{name: "tls, ca file and scram", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: ca}, SASL: scram(ScramSHA512, "u", secret)}},
		{name: "scram without tls", cfg: Config{Brokers: brokers, SASL: scram(ScramSHA256, "u", secret)}},
		{name: "mutual tls", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: ca, CertFile: cert, KeyFile: key}}},
		{name: "plain over tls", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: scram(Plain, "u", secret)}},
		{name: "no brokers", cfg: Config{}, want: []string{"Brokers is empty"}},
		{name: "broker without port", cfg: Config{Brokers: []string{"kafka-1"}}, want: []string{`Brokers[0] "kafka-1" is not host:port`}},
		{name: "broker without host", cfg: Config{Brokers: []string{"k:9092", ":9092"}}, want: []string{`Brokers[1] ":9092" has no host`}},
		{name: "broker port out of range", cfg: Config{Brokers: []string{"k:0"}}, want: []string{"has no port between 1 and 65535"}},
		{name: "missing ca file", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: missing}}, want: []string{fmt.Sprintf("TLS.CAFile %q does not exist", missing)}},
		{name: "ca file without certificate", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: notPEM}}, want: []string{"holds no PEM certificate"}},
		{name: "cert without key", cfg: Config{Brokers: brokers, TLS: &TLS{CertFile: cert}}, want: []string{"TLS.KeyFile is empty"}},
		{name: "key without cert", cfg: Config{Brokers: brokers, TLS: &TLS{KeyFile: key}}, want: []string{"TLS.CertFile is empty"}},
		{name: "cert and key that do not match", cfg: Config{Brokers: brokers, TLS: &TLS{CertFile: ca, KeyFile: key}}, want: []string{"TLS.CertFile"}},
		{name: "unknown mechanism", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: scram("GSSAPI", "u", secret)}, want: []string{`SASL.Mechanism "GSSAPI" is unknown`}},
		{name: "no mechanism", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: scram("", "u", secret)}, want: []string{"SASL.Mechanism is empty"}},
		{name: "sasl without user", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: scram(ScramSHA512, "", secret)}, want: []string{"SASL.User is empty"}},
		{name: "sasl without password", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: scram(ScramSHA512, "u", "")}, want: []string{"SASL.Password is empty"}},
		{name: "plain without tls", cfg: Config{Brokers: brokers, SASL: scram(Plain, "u", secret)}, want: []string{"PLAIN sends the password unencrypted: set TLS"}},
		{
			name: "every problem at once",
			cfg:  Config{TLS: &TLS{CAFile: missing, CertFile: cert}, SASL: scram("KERBEROS", "", "")},
			want: []string{"Brokers is empty", "TLS.CAFile", "TLS.KeyFile is empty", `SASL.Mechanism "KERBEROS"`, "SASL.User is empty", "SASL.Password is empty"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.want)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Validate() = %q, want it to contain %q", msg, w)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; lines != len(tc.want) {
				t.Errorf("Validate() reports %d problems, want %d:\n%s", lines, len(tc.want), msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("Validate() = %q shows the password", msg)
			}
			if _, err := tc.cfg.KgoOpts(); err == nil {
				t.Error("KgoOpts() accepted an invalid config")
			}
			if err := tc.cfg.ApplySarama(sarama.NewConfig()); err == nil {
				t.Error("ApplySarama() accepted an invalid config")
			}
		})
	}
}

func TestParseMechanism(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mechanism
		wantErr bool
	}{
		{in: "PLAIN", want: Plain},
		{in: "plain", want: Plain},
		{in: "SCRAM-SHA-256", want: ScramSHA256},
		{in: "scram-sha-512", want: ScramSHA512},
		{in: " SCRAM_SHA_512 ", want: ScramSHA512},
		{in: "", wantErr: true},
		{in: "GSSAPI", wantErr: true},
		{in: "OAUTHBEARER", wantErr: true},
		{in: "SCRAM-SHA-1", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMechanism(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseMechanism(%q) = %q, %v; want %q (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
			var m Mechanism
			if err := m.UnmarshalText([]byte(tc.in)); (err != nil) != tc.wantErr || m != tc.want {
				t.Fatalf("UnmarshalText(%q) = %q, %v", tc.in, m, err)
			}
			if tc.wantErr {
				return
			}
			text, _ := got.MarshalText()
			if back, err := ParseMechanism(string(text)); err != nil || back != got {
				t.Errorf("round trip of %q gave %q, %v", got, back, err)
			}
		})
	}
}

func TestNothingPrintsThePassword(t *testing.T) {
	ca, _, _ := testPKI(t)
	cfg := Config{
		Brokers: []string{"k1:9093", "k2:9093"},
		TLS:     &TLS{CAFile: ca},
		SASL:    &SASL{Mechanism: ScramSHA512, User: "cdcflow", Password: secret},
	}
	want := "brokers=k1:9093,k2:9093 tls=on ca=" + ca + " sasl=SCRAM-SHA-512 user=cdcflow password=xxxxx"
	if got := cfg.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, &cfg, cfg.SASL, *cfg.SASL} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, secret) {
				t.Errorf("Sprintf(%q, %T) = %q shows the password", format, v, got)
			}
		}
	}
	if got := cfg.Secrets(); len(got) != 1 || got[0] != secret {
		t.Errorf("Secrets() = %q, want the password", got)
	}
	if got := (Config{Brokers: []string{"k:9092"}}).String(); got != "brokers=k:9092 tls=off sasl=off" {
		t.Errorf("String() of a plaintext config = %q", got)
	}
}

func TestApplySarama(t *testing.T) {
	ca, cert, key := testPKI(t)
	brokers := []string{"127.0.0.1:9093"}
	for _, tc := range []struct {
		name      string
		cfg       Config
		tls       bool
		mechanism sarama.SASLMechanism // "": SASL off
	}{
		{name: "plaintext", cfg: Config{Brokers: brokers}},
		{name: "tls", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: ca, CertFile: cert, KeyFile: key}}, tls: true},
		{name: "scram-sha-512 over tls", cfg: Config{Brokers: brokers, TLS: &TLS{CAFile: ca}, SASL: &SASL{Mechanism: ScramSHA512, User: "u", Password: secret}}, tls: true, mechanism: sarama.SASLTypeSCRAMSHA512},
		{name: "scram-sha-256", cfg: Config{Brokers: brokers, SASL: &SASL{Mechanism: ScramSHA256, User: "u", Password: secret}}, mechanism: sarama.SASLTypeSCRAMSHA256},
		{name: "plain over tls", cfg: Config{Brokers: brokers, TLS: &TLS{}, SASL: &SASL{Mechanism: Plain, User: "u", Password: secret}}, tls: true, mechanism: sarama.SASLTypePlaintext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := sarama.NewConfig()
			if err := tc.cfg.ApplySarama(sc); err != nil {
				t.Fatal(err)
			}
			if err := sc.Validate(); err != nil {
				t.Fatalf("sarama rejects the config: %v", err)
			}
			if sc.Net.TLS.Enable != tc.tls || (sc.Net.TLS.Config != nil) != tc.tls {
				t.Errorf("Net.TLS = %v, %v; want enabled %v", sc.Net.TLS.Enable, sc.Net.TLS.Config, tc.tls)
			}
			if tc.tls && sc.Net.TLS.Config.MinVersion < 0x0303 {
				t.Errorf("Net.TLS.Config.MinVersion = %x, want TLS 1.2 at least", sc.Net.TLS.Config.MinVersion)
			}
			if sc.Net.SASL.Enable != (tc.mechanism != "") {
				t.Fatalf("Net.SASL.Enable = %v, want %v", sc.Net.SASL.Enable, tc.mechanism != "")
			}
			if tc.mechanism == "" {
				return
			}
			if sc.Net.SASL.Mechanism != tc.mechanism || sc.Net.SASL.User != "u" || sc.Net.SASL.Password != secret || !sc.Net.SASL.Handshake {
				t.Errorf("Net.SASL = %s %q handshake %v, want %s u", sc.Net.SASL.Mechanism, sc.Net.SASL.User, sc.Net.SASL.Handshake, tc.mechanism)
			}
			if (sc.Net.SASL.SCRAMClientGeneratorFunc != nil) != (tc.mechanism != sarama.SASLTypePlaintext) {
				t.Fatalf("SCRAMClientGeneratorFunc set = %v for %s", sc.Net.SASL.SCRAMClientGeneratorFunc != nil, tc.mechanism)
			}
			if gen := sc.Net.SASL.SCRAMClientGeneratorFunc; gen != nil {
				c := gen()
				if err := c.Begin("u", secret, ""); err != nil {
					t.Fatal(err)
				}
				first, err := c.Step("")
				if err != nil || !strings.HasPrefix(first, "n,,n=u,r=") || c.Done() {
					t.Errorf("first SCRAM message = %q, %v (done %v); want n,,n=u,r=<nonce>", first, err, c.Done())
				}
			}
		})
	}
	t.Run("nil config", func(t *testing.T) {
		if err := (Config{Brokers: brokers}).ApplySarama(nil); err == nil {
			t.Error("ApplySarama(nil) = nil, want an error")
		}
	})
	t.Run("sasl turned off again", func(t *testing.T) {
		sc := sarama.NewConfig()
		sc.Net.SASL.Enable = true
		if err := (Config{Brokers: brokers}).ApplySarama(sc); err != nil || sc.Net.SASL.Enable || sc.Net.TLS.Enable {
			t.Errorf("ApplySarama of a plaintext config left SASL %v, TLS %v (%v)", sc.Net.SASL.Enable, sc.Net.TLS.Enable, err)
		}
	})
	t.Run("version too old for sasl", func(t *testing.T) {
		sc := sarama.NewConfig()
		sc.Version = sarama.V0_10_2_0
		err := (Config{Brokers: brokers, SASL: &SASL{Mechanism: ScramSHA512, User: "u", Password: secret}}).ApplySarama(sc)
		if err == nil || !strings.Contains(err.Error(), "Version") {
			t.Errorf("ApplySarama with Version 0.10.2 = %v, want an error naming Version", err)
		}
	})
}

func TestKgoOpts(t *testing.T) {
	ca, _, _ := testPKI(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want int // options: seed brokers, TLS dialer, SASL
	}{
		{name: "plaintext", cfg: Config{Brokers: []string{"127.0.0.1:1"}}, want: 1},
		{name: "tls", cfg: Config{Brokers: []string{"127.0.0.1:1"}, TLS: &TLS{CAFile: ca}}, want: 2},
		{name: "tls and scram", cfg: Config{Brokers: []string{"127.0.0.1:1"}, TLS: &TLS{CAFile: ca}, SASL: &SASL{Mechanism: ScramSHA256, User: "u", Password: secret}}, want: 3},
		{name: "tls and plain", cfg: Config{Brokers: []string{"127.0.0.1:1"}, TLS: &TLS{}, SASL: &SASL{Mechanism: Plain, User: "u", Password: secret}}, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.cfg.KgoOpts()
			if err != nil {
				t.Fatal(err)
			}
			if len(opts) != tc.want {
				t.Errorf("KgoOpts() gave %d options, want %d", len(opts), tc.want)
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatalf("kgo.NewClient: %v", err)
			}
			cl.Close()
		})
	}
}

// TestTLSConfigPresentsTheClientCertificate: a server that requires a client
// certificate signed by the CA gets the one in CertFile.
func TestTLSConfigPresentsTheClientCertificate(t *testing.T) {
	caFile, certFile, keyFile := testPKI(t)
	serverCert, err := tls.LoadX509KeyPair(certFile, keyFile) // any certificate will do for the server
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()

	cfg := Config{Brokers: []string{ln.Addr().String()}, TLS: &TLS{CertFile: certFile, KeyFile: keyFile, InsecureSkipVerify: true}}
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), tc)
	if err != nil {
		t.Fatalf("handshake with a server that requires a client certificate: %v", err)
	}
	defer conn.Close()
	if got := <-peer; got != "client" {
		t.Errorf("the server saw client certificate %q, want CN client", got)
	}
}
