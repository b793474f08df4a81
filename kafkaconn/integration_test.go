package kafkaconn_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/kafkaconn"
)

// saslConfig is the services' SASL_SSL listener with mechanism m.
func saslConfig(t *testing.T, m kafkaconn.Mechanism) kafkaconn.Config {
	t.Helper()
	cfg := testenv.KafkaSASL(t)
	sasl := *cfg.SASL
	sasl.Mechanism = m
	cfg.SASL = &sasl
	return cfg
}

// newClient is a franz-go client over cfg with the extra options; it is
// closed when the test ends.
func newClient(t *testing.T, cfg kafkaconn.Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := cfg.KgoOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newTopic creates a one-partition topic through cfg and returns its name;
// it is deleted when the test ends.
func newTopic(t *testing.T, ctx context.Context, cfg kafkaconn.Config) string {
	t.Helper()
	adm := kadm.NewClient(newClient(t, cfg))
	name := fmt.Sprintf("kafkaconn.%s.%d", strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()), time.Now().UnixNano())
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, name); err != nil {
		t.Fatalf("create topic %s over %s: %v", name, cfg, err)
	}
	t.Cleanup(func() { // before the client closes (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adm.DeleteTopics(ctx, name)
	})
	return name
}

// roundTripKgo produces one record with franz-go over cfg and reads it back.
func roundTripKgo(t *testing.T, ctx context.Context, cfg kafkaconn.Config) {
	t.Helper()
	topic := newTopic(t, ctx, cfg)
	cl := newClient(t, cfg, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	value := []byte("franz-go over " + cfg.SASL.Mechanism.String())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: value}).FirstErr(); err != nil {
		t.Fatalf("produce over %s: %v", cfg, err)
	}
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record read back from %s over %s: %v", topic, cfg, err)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			t.Fatalf("fetch over %s: %v", cfg, errs)
		}
		if recs := fetches.Records(); len(recs) > 0 {
			if string(recs[0].Value) != string(value) {
				t.Fatalf("read back %q, want %q", recs[0].Value, value)
			}
			return
		}
	}
}

func TestFranzGoOverSASLSSL(t *testing.T) {
	for _, m := range []kafkaconn.Mechanism{kafkaconn.ScramSHA512, kafkaconn.ScramSHA256} {
		t.Run(m.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			roundTripKgo(t, ctx, saslConfig(t, m))
		})
	}
}

// TestMutualTLSWithSCRAM: the listener asks for a client certificate signed
// by the services' CA (ssl.client.auth=requested) and checks the one it gets;
// TestTLSConfigPresentsTheClientCertificate checks that one is sent.
func TestMutualTLSWithSCRAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := saslConfig(t, kafkaconn.ScramSHA512)
	tlsCfg := *cfg.TLS
	tlsCfg.CertFile, tlsCfg.KeyFile = testenv.TLSClientCert(t)
	cfg.TLS = &tlsCfg
	roundTripKgo(t, ctx, cfg)
}

func TestSaramaOverSASLSSL(t *testing.T) {
	for _, m := range []kafkaconn.Mechanism{kafkaconn.ScramSHA512, kafkaconn.ScramSHA256} {
		t.Run(m.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cfg := saslConfig(t, m)
			topic := newTopic(t, ctx, cfg)

			sc := sarama.NewConfig()
			if err := cfg.ApplySarama(sc); err != nil {
				t.Fatal(err)
			}
			sc.Producer.Return.Successes = true
			sc.Producer.RequiredAcks = sarama.WaitForAll
			producer, err := sarama.NewSyncProducer(cfg.Brokers, sc)
			if err != nil {
				t.Fatalf("sarama producer over %s: %v", cfg, err)
			}
			defer producer.Close()
			value := "sarama over " + m.String()
			partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(value)})
			if err != nil {
				t.Fatalf("sarama produce over %s: %v", cfg, err)
			}

			consumer, err := sarama.NewConsumer(cfg.Brokers, sc)
			if err != nil {
				t.Fatalf("sarama consumer over %s: %v", cfg, err)
			}
			defer consumer.Close()
			pc, err := consumer.ConsumePartition(topic, partition, offset)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			select {
			case msg := <-pc.Messages():
				if string(msg.Value) != value || msg.Offset != offset {
					t.Fatalf("read back %q at offset %d, want %q at %d", msg.Value, msg.Offset, value, offset)
				}
			case err := <-pc.Errors():
				t.Fatalf("sarama consume: %v", err)
			case <-ctx.Done():
				t.Fatalf("no record read back from %s over %s", topic, cfg)
			}
		})
	}
}

func TestWrongPasswordFailsWithoutShowingIt(t *testing.T) {
	good := saslConfig(t, kafkaconn.ScramSHA512)
	const wrongPassword = "not-the-password-7f3a9c"
	bad := good
	sasl := *good.SASL
	sasl.Password = wrongPassword
	bad.SASL = &sasl

	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("a wrong password was accepted")
		}
		msg := err.Error()
		if !strings.Contains(strings.ToLower(msg), "authentication failed") {
			t.Errorf("error = %q, want it to say authentication failed", msg)
		}
		for _, pw := range []string{wrongPassword, good.SASL.Password} {
			if strings.Contains(msg, pw) {
				t.Errorf("error = %q shows a password", msg)
			}
		}
	}

	t.Run("franz-go", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		check(t, newClient(t, bad, kgo.RetryTimeout(5*time.Second)).Ping(ctx))
	})
	t.Run("sarama", func(t *testing.T) {
		sc := sarama.NewConfig()
		if err := bad.ApplySarama(sc); err != nil {
			t.Fatal(err)
		}
		sc.Metadata.Retry.Max = 0
		cl, err := sarama.NewClient(bad.Brokers, sc)
		if err == nil {
			cl.Close()
		}
		check(t, err)
	})
}

func TestTLSWithTheWrongCAFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := saslConfig(t, kafkaconn.ScramSHA512)
	cfg.TLS = &kafkaconn.TLS{} // the system's roots do not know the services' CA
	err := newClient(t, cfg, kgo.RetryTimeout(2*time.Second)).Ping(ctx)
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Fatalf("Ping with the system roots = %v, want x509.UnknownAuthorityError", err)
	}
}

// TestWaitLeaders creates topics and at once waits for their leaders, as a
// processor does before its goka groups start; a topic that never comes
// makes the wait fail with its name when the context ends.
func TestWaitLeaders(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stem := fmt.Sprintf("waitleaders-%d", time.Now().UnixNano())
	topics := []string{stem + "-a", stem + "-b"}
	if _, err := adm.CreateTopics(ctx, 6, 1, nil, topics...); err != nil {
		t.Fatal(err)
	}
	defer adm.DeleteTopics(context.Background(), topics...)

	sc := sarama.NewConfig()
	sc.Metadata.AllowAutoTopicCreation = false // the broker would make the missing topic below
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := kafkaconn.WaitLeaders(ctx, client, topics...); err != nil {
		t.Fatalf("WaitLeaders on topics just created: %v", err)
	}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil || len(parts) != 6 {
			t.Fatalf("%s: partitions %v, %v; want 6", topic, parts, err)
		}
		for _, part := range parts {
			if leader, err := client.Leader(topic, part); err != nil || leader == nil {
				t.Fatalf("%s/%d has no leader after WaitLeaders: %v", topic, part, err)
			}
		}
	}

	short, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	missing := stem + "-never"
	err = kafkaconn.WaitLeaders(short, client, missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("WaitLeaders on a topic that is never made: %v; want an error naming %s", err, missing)
	}
}
