package kafkaconn

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// ApplySarama sets the Net.TLS and Net.SASL sections of sc (a sarama, and so
// goka, client configuration) from c, after validating c. It leaves the rest
// of sc alone; the brokers go to sarama (or goka) separately, as c.Brokers.
// SASL uses the handshake of version 1 (Kafka 1.0 and later), so sc.Version
// must be at least sarama.V1_0_0_0, as sarama's default is.
func (c Config) ApplySarama(sc *sarama.Config) error {
	if sc == nil {
		return errors.New("ApplySarama: the sarama config is nil: pass sarama.NewConfig()")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return err
	}
	sc.Net.TLS.Enable = tc != nil
	sc.Net.TLS.Config = tc
	if c.SASL == nil {
		sc.Net.SASL.Enable = false
		return nil
	}
	if !sc.Version.IsAtLeast(sarama.V1_0_0_0) {
		return fmt.Errorf("sarama config Version %s is below 1.0.0: SASL needs 1.0.0 or later (sarama's default is fine)", sc.Version)
	}
	s := c.SASL
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	sc.Net.SASL.User = s.User
	sc.Net.SASL.Password = s.Password
	sc.Net.SASL.SCRAMClientGeneratorFunc = nil
	switch s.Mechanism {
	case Plain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case ScramSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case ScramSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	}
	return nil
}

// scramClient is sarama's SCRAMClient over xdg-go/scram. Sarama makes one per
// connection (through SCRAMClientGeneratorFunc) and uses it from one
// goroutine.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		// xdg-go/scram's errors quote the user, never the password.
		return fmt.Errorf("scram: prepare credentials: %w", err)
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }
