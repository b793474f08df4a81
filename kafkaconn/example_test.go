package kafkaconn_test

import (
	"fmt"
	"log"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcflow/cdcflow/kafkaconn"
)

// One Config for both kinds of client: franz-go (capture) and sarama (goka
// processors). Nothing connects until a client is used.
func Example() {
	cfg := kafkaconn.Config{
		Brokers: []string{"kafka-1.example.com:9093", "kafka-2.example.com:9093"},
		TLS:     &kafkaconn.TLS{}, // verify the brokers against the system's roots
		SASL:    &kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, User: "cdcflow", Password: "s3cret"},
	}

	opts, err := cfg.KgoOpts()
	if err != nil {
		log.Fatal(err)
	}
	client, err := kgo.NewClient(append(opts, kgo.ClientID("capture"))...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	sc := sarama.NewConfig()
	if err := cfg.ApplySarama(sc); err != nil {
		log.Fatal(err)
	}

	fmt.Println(cfg)
	fmt.Println(sc.Net.TLS.Enable, sc.Net.SASL.Mechanism)
	// Output:
	// brokers=kafka-1.example.com:9093,kafka-2.example.com:9093 tls=on sasl=SCRAM-SHA-512 user=cdcflow password=xxxxx
	// true SCRAM-SHA-512
}

// Validate reports every problem at once, naming the Config field and the fix.
func ExampleConfig_Validate() {
	cfg := kafkaconn.Config{
		Brokers: []string{"kafka-1"},
		TLS:     &kafkaconn.TLS{CAFile: "/nonexistent/ca.pem"},
		SASL:    &kafkaconn.SASL{Mechanism: "SCRAM-SHA-1", User: "cdcflow"},
	}
	fmt.Println(cfg.Validate())
	// Output:
	// Brokers[0] "kafka-1" is not host:port
	// TLS.CAFile "/nonexistent/ca.pem" does not exist: give the PEM file of the CA that signed the brokers' certificates
	// SASL.Mechanism "SCRAM-SHA-1" is unknown: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// SASL.Password is empty: set the password of SASL.User
}
