package kafkaconn

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// WaitLeaders waits until every partition of each topic answers a request
// for its oldest offset, checking every 200ms, or ctx ends. A topic just
// created answers "not the leader" for a moment, until its brokers have
// learned who leads its partitions; a goka processor that creates its group
// table and at once asks for the table's offsets fails then, so the topics a
// processor is about to start on are waited for first. The client's
// configuration is whatever reaches the brokers (see ApplySarama).
func WaitLeaders(ctx context.Context, client sarama.Client, topics ...string) error {
	var last error
	for _, topic := range topics {
		for {
			if last = oldestOffsets(client, topic); last == nil {
				break
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("partitions of topic %s have no leader yet: %w (is every Kafka broker up?)", topic, last)
			}
		}
	}
	return nil
}

func oldestOffsets(client sarama.Client, topic string) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions", topic)
	}
	for _, part := range parts {
		if _, err := client.GetOffset(topic, part, sarama.OffsetOldest); err != nil {
			return err
		}
	}
	return nil
}
