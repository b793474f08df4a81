package processors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/lovoo/goka"
)

// Every input of a processor is read as bytes (goka's codec.Bytes) and
// decoded in its callback, never in a goka codec: a codec error fails the
// partition, and goka would stop on the same record after every restart. A
// record that cannot be decoded goes to the dead-letter topic instead, and
// the processor goes on; a schema registry that cannot be asked is a passing
// condition, waited out with backoff, so that a good record is never
// dead-lettered because a service blinked.

// changeRecord is a decoded record of a change topic.
type changeRecord struct {
	ev  *change.Event
	key change.Row // the row's primary key, from the record's key
	raw []byte     // the record's value, for the dead-letter topic
}

// changeInput returns the callback of an input of change envelopes (a
// change topic capture writes): it decodes the record and hands it to
// handle. A tombstone (nil value) is skipped: the
// delete before it did the work. A record that is not a change of the
// topic's table — not in wire format, a schema id the registry does not know,
// truncated or invalid Avro, a key that does not decode or is not the key of
// the row in the envelope — goes to the dead-letter topic, unless deadLetter
// is false: then it is only counted, because another group of the topology
// reads the same topic and dead-letters it (a read model's two stages).
func (p *Processor) changeInput(deadLetter bool, handle func(goka.Context, changeRecord)) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		if raw == nil {
			return
		}
		var rec changeRecord
		err := p.whileRegistryUnavailable(gctx, func(ctx context.Context) (err error) {
			rec, err = p.decodeChange(ctx, string(gctx.Topic()), []byte(gctx.Key()), raw)
			return err
		})
		if err != nil {
			if deadLetter {
				p.deadLetter(gctx, raw, nil, reasonMalformed, err)
			}
			return
		}
		handle(gctx, rec)
	}
}

// decodeChange decodes a change record of topic and checks that it is a
// change of the topic's table (<prefix>.<schema>.<table>) and that its key
// is the key of the row it carries.
func (p *Processor) decodeChange(ctx context.Context, topic string, key, value []byte) (changeRecord, error) {
	if p.debezium[topic] {
		return p.decodeDebezium(ctx, topic, key, value)
	}
	ev, err := p.cfg.Decoder.DecodeEvent(ctx, value)
	if err != nil {
		return changeRecord{}, fmt.Errorf("decode change envelope: %w", err)
	}
	if ev.Source.Table != "" && !strings.HasSuffix(topic, "."+ev.TableName()) {
		return changeRecord{}, fmt.Errorf("a change of table %s on topic %s: it belongs on the table's own topic", ev.TableName(), topic)
	}
	if isTruncate(ev) {
		return changeRecord{ev: ev, raw: value}, nil // Debezium's truncate has no key
	}
	if len(key) == 0 {
		return changeRecord{}, errors.New("a change record without a key: capture keys every change by its row's primary key")
	}
	k, err := p.cfg.Decoder.DecodeKey(ctx, key)
	if err != nil {
		return changeRecord{}, fmt.Errorf("decode key: %w", err)
	}
	if err := checkKey(k, ev); err != nil {
		return changeRecord{}, err
	}
	return changeRecord{ev: ev, key: k, raw: value}, nil
}

// decodeDebezium decodes a change record of a topic another Debezium
// connector writes, with the same checks as decodeChange.
func (p *Processor) decodeDebezium(ctx context.Context, topic string, key, value []byte) (changeRecord, error) {
	ev, k, err := p.cfg.Decoder.DecodeDebezium(ctx, key, value)
	if err != nil {
		return changeRecord{}, fmt.Errorf("decode Debezium change: %w", err)
	}
	if ev.Source.Table != "" && !strings.HasSuffix(topic, "."+ev.TableName()) {
		return changeRecord{}, fmt.Errorf("a change of table %s on topic %s: it belongs on the table's own topic", ev.TableName(), topic)
	}
	if err := checkKey(k, ev); err != nil {
		return changeRecord{}, err
	}
	return changeRecord{ev: ev, key: k, raw: value}, nil
}

// checkKey reports a key whose columns differ from the row of ev (its
// before image for a delete, else its after image).
func checkKey(key change.Row, ev *change.Event) error {
	row := ev.After
	if ev.Op == change.OpDelete {
		row = ev.Before
	}
	if row == nil {
		return fmt.Errorf("the %s change carries no row to check its key against", ev.Op)
	}
	for _, col := range slices.Sorted(maps.Keys(key)) {
		v, ok := row[col]
		if !ok {
			return fmt.Errorf("key column %s is not a column of the row: the key belongs to another table", col)
		}
		if fmt.Sprint(v) != fmt.Sprint(key[col]) {
			return fmt.Errorf("the key (%s=%v) is not the key of the row in the envelope (%s=%v)", col, key[col], col, v)
		}
	}
	return nil
}

// whileRegistryUnavailable runs op, and again with backoff for as long as it
// fails with [serde.ErrRegistryUnavailable]; it returns op's first other
// result. When the processor stops meanwhile, the callback is aborted and
// its record left uncommitted, to be read again on restart.
func (p *Processor) whileRegistryUnavailable(gctx goka.Context, op func(ctx context.Context) error) error {
	ctx := gctx.Context()
	err := p.retry(ctx, "registry", 0, func(err error) bool { return errors.Is(err, serde.ErrRegistryUnavailable) },
		func() error { return op(ctx) })
	if errors.Is(err, serde.ErrRegistryUnavailable) {
		panic(errInterrupted) // only when ctx ended: retry gives up on nothing else
	}
	return err
}
