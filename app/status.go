package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/cdcflow/cdcflow/kafkaconn"
)

// SourceFlags name capture's source and its checkpoint, for reporting on
// capture: the database, the replication slot and the checkpoint topic.
type SourceFlags struct {
	PgDSN           string `name:"pg-dsn" help:"PostgreSQL connection string of the captured database (the password is better kept in PGPASSWORD or ~/.pgpass); with it, status reports capture's replication slot and checkpoint, without it neither." env:"CDCFLOW_PG_DSN" redact:"url"`
	Slot            string `name:"slot" help:"Capture's logical replication slot." default:"cdcflow" env:"CDCFLOW_SLOT"`
	CheckpointTopic string `name:"checkpoint-topic" help:"Compacted topic capture commits its position to." default:"cdcflow.checkpoints" env:"CDCFLOW_CHECKPOINT_TOPIC"`
}

// ReportFlags are the output and health settings of a status command.
type ReportFlags struct {
	JSON   bool                `name:"json" help:"Print the report as JSON, for scripts."`
	MaxLag []inspect.Threshold `name:"max-lag" help:"Exit 1 when a consumer group lags more: a number of records (10000) or an age of its oldest unread record (30s); give both as 10000,30s." env:"CDCFLOW_MAX_LAG" placeholder:"RECORDS|AGE"`
}

// statusCmd reports on the topologies' consumer groups and topics, and on
// capture when it knows where capture reads.
type statusCmd struct {
	Source SourceFlags `embed:""`
	ReportFlags
}

func (c *statusCmd) Run(ctx context.Context, e *env) error {
	topos, err := declare(Source{Prefix: e.flags.TopicPrefix, Schema: e.flags.Schema}, e.fns)
	if err != nil {
		return err
	}
	k, err := connectKafka(ctx, e.flags.Kafka)
	if err != nil {
		return err
	}
	defer k.Close()
	r := &inspect.Report{At: time.Now()}
	if c.Source.PgDSN != "" {
		if err := readCaptureSide(ctx, r, k, c.Source, e.flags.TopicPrefix); err != nil {
			return err
		}
	}
	var topics, deadLetters []string
	for _, t := range topos {
		d := deploymentOf(e.flags.Group, t)
		for _, g := range d.groups {
			gl, err := k.GroupLag(ctx, g.name, g.inputs)
			if err != nil {
				return err
			}
			r.AddGroup(t.Name, gl)
		}
		topics = append(append(topics, d.changeTopics...), d.eventTopics...)
		deadLetters = append(deadLetters, d.deadLetter)
	}
	slices.Sort(topics)
	if r.Topics, err = k.Topics(ctx, slices.Compact(topics)...); err != nil {
		return err
	}
	if r.DeadLetters, err = k.Topics(ctx, deadLetters...); err != nil {
		return err
	}
	if err := c.ReportFlags.print(r, e.stdout); err != nil {
		return err
	}
	if !r.Healthy() {
		return errReported
	}
	return nil
}

// connectKafka returns a Kafka reader once Kafka answers.
func connectKafka(ctx context.Context, flags KafkaFlags) (*inspect.Kafka, error) {
	conn, err := flags.Connection()
	if err != nil {
		return nil, err
	}
	return dialKafka(ctx, conn)
}

func dialKafka(ctx context.Context, conn kafkaconn.Config) (*inspect.Kafka, error) {
	opts, err := conn.KgoOpts()
	if err != nil {
		return nil, err
	}
	k, err := inspect.NewKafka(opts)
	if err != nil {
		return nil, err
	}
	if err := k.Ping(ctx); err != nil {
		k.Close()
		return nil, fmt.Errorf("Kafka unreachable at %v: %w; check --kafka-brokers, the TLS and SASL settings, and that Kafka is running", conn.Brokers, err)
	}
	return k, nil
}

// readCaptureSide adds the replication slot and capture's checkpoint to r.
func readCaptureSide(ctx context.Context, r *inspect.Report, k *inspect.Kafka, src SourceFlags, prefix string) error {
	slot, err := inspect.ReadSlot(ctx, src.PgDSN, src.Slot)
	if err != nil {
		return err
	}
	r.Slot = &slot
	r.Checkpoint, err = k.Checkpoint(ctx, src.CheckpointTopic, prefix, src.Slot)
	return err
}

// print checks r against the thresholds and prints it to w.
func (f ReportFlags) print(r *inspect.Report, w io.Writer) error {
	r.Check(f.MaxLag)
	return r.Print(w, f.JSON)
}

// StatusFlags are the settings of a status command of a binary without
// topologies (cmd/cdcflow's status): capture's source, its checkpoint and
// topics, and the consumer groups to report on.
type StatusFlags struct {
	PgDSN           string `name:"pg-dsn" help:"PostgreSQL connection string of the captured database (the password is better kept in PGPASSWORD or ~/.pgpass)." default:"postgres://cdcflow@127.0.0.1:55432/cdcflow?sslmode=disable" env:"CDCFLOW_PG_DSN" redact:"url"`
	Slot            string `name:"slot" help:"Capture's logical replication slot." default:"cdcflow" env:"CDCFLOW_SLOT"`
	CheckpointTopic string `name:"checkpoint-topic" help:"Compacted topic capture commits its position to." default:"cdcflow.checkpoints" env:"CDCFLOW_CHECKPOINT_TOPIC"`
	TopicPrefix     string `name:"topic-prefix" help:"Topic prefix capture publishes under: the topics reported are <prefix>.*." default:"cdcflow" env:"CDCFLOW_TOPIC_PREFIX"`

	Kafka KafkaFlags `embed:"" prefix:"kafka-"`

	Groups      []string `name:"group" help:"Consumer groups to report on (repeat, or separate with commas); default: every group whose name starts with --group-prefix." env:"CDCFLOW_STATUS_GROUPS"`
	GroupPrefix string   `name:"group-prefix" help:"Report on the consumer groups whose names start with this (empty: every group Kafka lists)." env:"CDCFLOW_STATUS_GROUP_PREFIX"`
	ReportFlags
}

// ErrUnhealthy is RunStatus's error when the report it printed is
// unhealthy: the report says why.
var ErrUnhealthy = errors.New("unhealthy")

// RunStatus reports, to w, on capture (its replication slot and
// checkpoint), on the consumer groups f names and on the topics under the
// topic prefix, as text or JSON; it returns ErrUnhealthy once it printed an
// unhealthy report (the slot inactive, a lag over --max-lag).
func RunStatus(ctx context.Context, f StatusFlags, w io.Writer) error {
	k, err := connectKafka(ctx, f.Kafka)
	if err != nil {
		return err
	}
	defer k.Close()
	r := &inspect.Report{At: time.Now()}
	src := SourceFlags{PgDSN: f.PgDSN, Slot: f.Slot, CheckpointTopic: f.CheckpointTopic}
	if err := readCaptureSide(ctx, r, k, src, f.TopicPrefix); err != nil {
		return err
	}
	groups := f.Groups
	if len(groups) == 0 {
		if groups, err = k.ListGroups(ctx, f.GroupPrefix); err != nil {
			return err
		}
	}
	for _, g := range groups {
		gl, err := k.GroupLag(ctx, g, nil)
		if err != nil {
			return err
		}
		r.AddGroup("", gl)
	}
	topics, err := k.ListTopics(ctx, f.TopicPrefix+".")
	if err != nil {
		return err
	}
	deadLetter := f.TopicPrefix + ".dlq"
	topics = slices.DeleteFunc(topics, func(t string) bool { return t == deadLetter })
	if r.Topics, err = k.Topics(ctx, topics...); err != nil {
		return err
	}
	if r.DeadLetters, err = k.Topics(ctx, deadLetter); err != nil {
		return err
	}
	if err := f.ReportFlags.print(r, w); err != nil {
		return err
	}
	if !r.Healthy() {
		return ErrUnhealthy
	}
	return nil
}
