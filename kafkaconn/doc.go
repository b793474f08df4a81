// Package kafkaconn holds the Kafka connection settings every cdcflow Kafka
// client shares: the bootstrap brokers, TLS and SASL. Capture talks to Kafka
// through franz-go, the processors through goka on sarama; one [Config]
// configures both, so that a deployment states its security once.
//
// A Config is a plain value. [Config.Validate] reports every problem at once
// (a missing CA file, an unknown mechanism, a SASL user without a password,
// ...) before anything connects. [Config.KgoOpts] turns it into franz-go
// client options, [Config.ApplySarama] into the Net section of a sarama
// configuration (which goka takes through its config builders).
//
// # TLS
//
// A non-nil [Config.TLS] turns TLS on. Without a CAFile the system's roots
// verify the brokers; with one, only that CA does. CertFile and KeyFile add a
// client certificate (mutual TLS). The server name checked against each
// broker's certificate is the broker's host unless ServerName overrides it.
//
// # SASL
//
// A non-nil [Config.SASL] authenticates every connection with PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512 ([Mechanism]). PLAIN sends the password as
// it is, so Validate accepts it only together with TLS; SCRAM never sends it.
//
// # Secrets
//
// The password appears in nothing this package prints or returns:
// [Config.String] masks it, and no error quotes it. [Config.Secrets] lists
// what a log redactor should mask.
package kafkaconn
