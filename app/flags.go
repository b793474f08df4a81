package app

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/internal/connect"
	"github.com/cdcflow/cdcflow/kafkaconn"
)

// Flags are the settings of a processor binary. Every field is a flag and
// an environment variable, and a key of the YAML config file (the flag's
// name: kafka-brokers, or nested, kafka: {brokers: ...}). Embed Flags in a
// kong CLI of your own (`embed:""`), or let [Main] parse them.
type Flags struct {
	Config string `name:"config" type:"existingfile" help:"YAML file of settings, keyed by flag name (kafka-brokers: [...], or kafka: {brokers: [...]}); flags and environment variables override it." env:"CDCFLOW_CONFIG"`

	Kafka KafkaFlags `embed:"" prefix:"kafka-"`

	RegistryURL string      `name:"registry-url" help:"Confluent-compatible schema registry that capture registers its schemas with; credentials in the URL become basic auth (https://user:password@host:8081)." env:"CDCFLOW_REGISTRY_URL" redact:"url"`
	Registry    ClientFlags `embed:"" prefix:"registry-" envprefix:"CDCFLOW_REGISTRY_" set:"service=the schema registry"`
	RedisAddr   string      `name:"redis-addr" help:"Redis for the topologies' metrics: host:port, or a URL with credentials and TLS (rediss://user:password@host:6380/0)." env:"CDCFLOW_REDIS_ADDR" redact:"url"`
	Redis       ClientFlags `embed:"" prefix:"redis-" envprefix:"CDCFLOW_REDIS_" set:"service=Redis"`
	RedisPrefix string      `name:"redis-prefix" help:"Prefix of every Redis key." default:"cdcflow" env:"CDCFLOW_REDIS_PREFIX"`
	PostgresDSN string      `name:"postgres-dsn" help:"PostgreSQL for the topologies' Postgres tables (postgres://user:password@host:5432/db)." env:"CDCFLOW_POSTGRES_DSN" redact:"url"`
	ESURL       string      `name:"es-url" help:"Elasticsearch for the topologies' search indexes, with credentials if it needs them (https://user:password@host:9200)." env:"CDCFLOW_ES_URL" redact:"url"`
	ES          ClientFlags `embed:"" prefix:"es-" envprefix:"CDCFLOW_ES_" set:"service=Elasticsearch"`

	TopicPrefix string `name:"topic-prefix" help:"Topic prefix capture publishes under: topics are <prefix>.<schema>.<table>." default:"cdcflow" env:"CDCFLOW_TOPIC_PREFIX"`
	Schema      string `name:"schema" help:"PostgreSQL schema of the captured tables." default:"public" env:"CDCFLOW_SCHEMA"`
	Group       string `name:"group" help:"Consumer group prefix: each topology runs as <group>-<topology> (default: the topology's name), so that two deployments of one topology keep apart." env:"CDCFLOW_GROUP"`
	Instance    string `name:"instance" help:"Names this processor among those running the same topologies under the same --group, the same across its restarts (a pod or host name): the transactional ids of its event relays end in it. Processors sharing a group need distinct ones; empty is one name." env:"CDCFLOW_INSTANCE"`
	StateDir    string `name:"state-dir" help:"Keep the processors' table state on disk under this directory (LevelDB); empty keeps it in memory, recovered from Kafka on every start." env:"CDCFLOW_STATE_DIR"`

	HTTPAddr        string        `name:"http-addr" help:"Serve /healthz, /readyz, /metrics, the live dashboard (/dashboard/) and the read models' and projections' query API here; empty serves nothing." default:"127.0.0.1:8080" env:"CDCFLOW_HTTP_ADDR"`
	RetryTimeout    time.Duration `name:"retry-timeout" help:"How long a failing Redis or Elasticsearch write is retried before the processor stops (Redis) or dead-letters the change (Elasticsearch)." default:"1m" env:"CDCFLOW_RETRY_TIMEOUT"`
	MarkerRetention time.Duration `name:"marker-retention" help:"How long read models' and projections' tables keep the marker of a deleted row, from its delete's commit time, before a sweep drops it; negative keeps markers forever." default:"168h" env:"CDCFLOW_MARKER_RETENTION"`
	LogLevel        slog.Level    `name:"log-level" help:"Log level: debug, info, warn, error." default:"info" env:"CDCFLOW_LOG_LEVEL"`
}

// ClientFlags are how a binary authenticates to a service and encrypts its
// connection, beside the service's address: a user and password (basic
// auth to the schema registry and Elasticsearch, an ACL user of Redis),
// the password from the environment or a file rather than the command
// line, and TLS with a CA and a client certificate. Flags embeds it once per
// service, with the service's prefix (--registry-user, --redis-tls-ca, ...).
type ClientFlags struct {
	User         string `name:"user" help:"User to authenticate to ${service} as (instead of credentials in its URL)." env:"USER"`
	Password     string `name:"password" help:"Password of the user of ${service}; better given in the environment, or with the password-file flag." env:"PASSWORD" redact:"secret"`
	PasswordFile string `name:"password-file" type:"path" help:"File holding the password of the user of ${service} (a mounted secret)." env:"PASSWORD_FILE" redact:"file"`
	TLS          bool   `name:"tls" help:"Connect to ${service} over TLS (implied by the other TLS flags; an https URL for the registry and Elasticsearch)." env:"TLS"`
	TLSCA        string `name:"tls-ca" type:"path" help:"PEM file of the CA certificates that verify ${service}; empty uses the system's roots." env:"TLS_CA"`
	TLSCert      string `name:"tls-cert" type:"path" help:"PEM client certificate, for when ${service} authenticates clients by certificate." env:"TLS_CERT"`
	TLSKey       string `name:"tls-key" type:"path" help:"PEM key of the client certificate for ${service}." env:"TLS_KEY"`
}

// options returns the connection options the flags describe, reading the
// password file and the TLS files; prefix names the flags in errors
// ("--redis-" for --redis-user, ...).
func (c ClientFlags) options(prefix string) (connect.Options, error) {
	o := connect.Options{User: c.User, Password: c.Password}
	var errs []error
	if c.PasswordFile != "" {
		if c.Password != "" {
			errs = append(errs, fmt.Errorf("%spassword and %spassword-file are both set: give the password one way", prefix, prefix))
		} else if pw, err := connect.ReadSecret(prefix+"password-file", c.PasswordFile); err != nil {
			errs = append(errs, err)
		} else {
			o.Password = pw
		}
	}
	files := connect.TLSFiles{CA: c.TLSCA, Cert: c.TLSCert, Key: c.TLSKey}
	if c.TLS || !files.Empty() {
		tc, err := files.Config(prefix + "tls")
		if err != nil {
			errs = append(errs, err)
		}
		o.TLS = tc
	}
	return o, errors.Join(errs...)
}

// KafkaFlags are the settings of the Kafka connection (kafkaconn.Config).
type KafkaFlags struct {
	Brokers       []string `name:"brokers" help:"Kafka bootstrap servers, host:port." env:"CDCFLOW_KAFKA_BROKERS"`
	TLS           bool     `name:"tls" help:"Connect to Kafka over TLS (implied by the other --kafka-tls-* flags)." env:"CDCFLOW_KAFKA_TLS"`
	TLSCA         string   `name:"tls-ca" type:"path" help:"PEM file of the CA certificates that verify the brokers; empty uses the system's roots." env:"CDCFLOW_KAFKA_TLS_CA"`
	TLSCert       string   `name:"tls-cert" type:"path" help:"PEM client certificate, for brokers that authenticate clients by certificate." env:"CDCFLOW_KAFKA_TLS_CERT"`
	TLSKey        string   `name:"tls-key" type:"path" help:"PEM key of --kafka-tls-cert." env:"CDCFLOW_KAFKA_TLS_KEY"`
	SASLMechanism string   `name:"sasl-mechanism" help:"SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL." env:"CDCFLOW_KAFKA_SASL_MECHANISM"`
	SASLUser      string   `name:"sasl-user" help:"SASL user." env:"CDCFLOW_KAFKA_SASL_USER"`
	SASLPassword  string   `name:"sasl-password" help:"SASL password; better given in the environment than on the command line." env:"CDCFLOW_KAFKA_SASL_PASSWORD" redact:"secret"`
}

// Connection returns the Kafka connection the flags describe, validated.
func (k KafkaFlags) Connection() (kafkaconn.Config, error) {
	c := kafkaconn.Config{Brokers: k.Brokers}
	if k.TLS || k.TLSCA != "" || k.TLSCert != "" || k.TLSKey != "" {
		c.TLS = &kafkaconn.TLS{CAFile: k.TLSCA, CertFile: k.TLSCert, KeyFile: k.TLSKey}
	}
	if k.SASLMechanism != "" || k.SASLUser != "" || k.SASLPassword != "" {
		m, err := kafkaconn.ParseMechanism(k.SASLMechanism)
		if err != nil {
			return c, fmt.Errorf("--kafka-sasl-mechanism: %w", err)
		}
		c.SASL = &kafkaconn.SASL{Mechanism: m, User: k.SASLUser, Password: k.SASLPassword}
	}
	if err := c.Validate(); err != nil {
		return c, flagErrors(err, map[string]string{
			"Config.Brokers": "--kafka-brokers", "Brokers": "--kafka-brokers",
			"TLS.CAFile": "--kafka-tls-ca", "TLS.CertFile": "--kafka-tls-cert", "TLS.KeyFile": "--kafka-tls-key",
			"SASL.Mechanism": "--kafka-sasl-mechanism", "SASL.User": "--kafka-sasl-user", "SASL.Password": "--kafka-sasl-password",
		})
	}
	return c, nil
}

// flagErrors rewrites the Config field names in err's text to the flags
// that set them.
func flagErrors(err error, flags map[string]string) error {
	msg := err.Error()
	for field, flag := range flags {
		msg = strings.ReplaceAll(msg, field, flag)
	}
	return errors.New(msg)
}
