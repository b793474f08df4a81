package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcflow/cdcflow/change"
	"github.com/cdcflow/cdcflow/internal/engine"
	"github.com/cdcflow/cdcflow/internal/kafkahash"
	"github.com/cdcflow/cdcflow/processors/pgsink"
	"github.com/lovoo/goka"
)

// postgresSink writes the rows of the topology's Postgres nodes in batches.
// A callback makes the write of its record and hands it to the sink with
// goka's deferred commit: the record is committed only once its batch is
// written (or its row dead-lettered), so a crash before that processes it
// again, which the rows' versions make harmless. Run writes what the
// callbacks hand it, up to Config.PostgresBatch rows per transaction, as
// soon as the previous batch is written. A row PostgreSQL rejects goes to
// the dead-letter topic; PostgreSQL unreachable for Config.RetryTimeout
// stops the processor, its records uncommitted.
type postgresSink struct {
	p       *Processor
	w       *pgsink.Writer
	pending chan pendingRow
}

// pendingRow is a write waiting for its batch, with what its record's
// dead letter would say and the function that commits the record.
type pendingRow struct {
	write pgsink.Write
	done  func(error)
	dl    deadLetterRecord
	at    int64 // source commit time, Unix ms (0: unknown)
}

func newPostgresSink(p *Processor, w *pgsink.Writer) *postgresSink {
	return &postgresSink{p: p, w: w, pending: make(chan pendingRow, 4*p.cfg.PostgresBatch)}
}

// ensureTables creates (or evolves) the topology's tables as the processor
// starts: a table PostgreSQL refuses fails the start; a PostgreSQL that does
// not answer does not, the first write ensures the table.
func (s *postgresSink) ensureTables(ctx context.Context) error {
	for _, t := range engine.SinksOf(s.p.topo.Engine()).Tables {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.w.Ensure(ectx, t)
		cancel()
		switch {
		case err != nil && pgsink.Permanent(err):
			return err
		case err != nil:
			s.p.cfg.Logger.Warn("could not create the PostgreSQL table at start; the first write will", "table", t.Target, "err", err)
		}
	}
	return nil
}

// changeCallback writes each change of a table node's input.
func (s *postgresSink) changeCallback(node *engine.PostgresTable) func(goka.Context, changeRecord) {
	return func(gctx goka.Context, rec changeRecord) {
		ev := rec.ev
		s.p.counters.change()
		w, err := node.Change(ev)
		if err != nil {
			s.p.deadLetter(gctx, rec.raw, &ev.Position, reasonUnapplicable, fmt.Errorf("postgres table %s: %w", node.Target, err))
			return
		}
		s.enqueue(gctx, node, w, rec.raw, &ev.Position, ev.Source.TsMs)
	}
}

// stateCallback writes each new state of a read model node's documents.
func (s *postgresSink) stateCallback(node *engine.PostgresTable) goka.ProcessCallback {
	return func(gctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		if raw == nil {
			return // a compacted marker (compact.go): the row went with its delete
		}
		var st engine.ModelState
		if err := json.Unmarshal(raw, &st); err != nil {
			s.p.deadLetter(gctx, raw, nil, reasonMalformed, fmt.Errorf("decode read model state: %w", err))
			return
		}
		s.p.counters.change()
		w, err := node.State(gctx.Key(), &st)
		if err != nil {
			s.p.deadLetter(gctx, raw, &st.Version, reasonUnapplicable, fmt.Errorf("postgres table %s: %w", node.Target, err))
			return
		}
		var at int64
		if st.Root != nil {
			at = st.Root.At
		}
		s.enqueue(gctx, node, w, raw, &st.Version, at)
	}
}

// enqueue hands a write to Run, deferring its record's commit until it is
// written. It blocks while Config.PostgresBatch*4 writes wait.
func (s *postgresSink) enqueue(gctx goka.Context, node *engine.PostgresTable, w engine.PostgresWrite, raw []byte, pos *change.Position, at int64) {
	row := pendingRow{write: pgsink.Write{Node: node, PostgresWrite: w}, done: gctx.DeferCommit(), dl: newDeadLetterRecord(gctx, raw, pos), at: at}
	select {
	case s.pending <- row:
	case <-gctx.Context().Done():
		row.done(errInterrupted)
	}
}

// run writes the pending rows in batches until ctx ends, dead-lettering
// through an emitter of its own (a batch is written outside the callbacks
// whose records it holds).
func (s *postgresSink) run(ctx context.Context) error {
	dlq, err := s.p.deadLetterEmitter()
	if err != nil {
		return err
	}
	defer dlq.Finish()
	batch := make([]pendingRow, 0, s.p.cfg.PostgresBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.pending:
			batch = append(batch, r)
		case <-ctx.Done():
			s.drop(ctx.Err())
			return nil
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case r := <-s.pending:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if err := s.write(ctx, dlq, batch); err != nil {
			for _, r := range batch {
				r.done(err)
			}
			s.drop(err)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// drop leaves the waiting rows' records uncommitted, as the processor stops.
func (s *postgresSink) drop(err error) {
	for {
		select {
		case r := <-s.pending:
			r.done(err)
		default:
			return
		}
	}
}

// write writes one batch, retrying for Config.RetryTimeout while
// PostgreSQL is unreachable, dead-letters the rows it rejects, and commits
// the batch's records.
func (s *postgresSink) write(ctx context.Context, dlq *goka.Emitter, batch []pendingRow) error {
	writes := make([]pgsink.Write, len(batch))
	for i, r := range batch {
		writes[i] = r.write
	}
	var results []pgsink.Result
	err := s.p.retry(ctx, "postgres", s.p.cfg.RetryTimeout, pgsink.Transient, func() (err error) {
		results, err = s.w.Apply(ctx, writes)
		return err
	})
	if err != nil {
		s.p.counters.failure()
		return fmt.Errorf("write %d rows to PostgreSQL: %w", len(batch), err)
	}
	for i, r := range batch {
		switch res := results[i]; {
		case res.Err != nil:
			if err := r.dl.emit(s.p, dlq, reasonUnapplicable, fmt.Errorf("postgres table %s: %w", r.write.Node.Target, res.Err)); err != nil {
				return err
			}
		case res.Applied:
			s.p.counters.applied(r.at)
		default:
			s.p.counters.duplicate()
		}
		r.done(nil)
	}
	return nil
}

// deadLetterEmitter returns an emitter to the dead-letter topic, for the
// writes made outside the callbacks whose records they hold.
func (p *Processor) deadLetterEmitter() (*goka.Emitter, error) {
	var opts []goka.EmitterOption
	if p.cfg.Tester != nil {
		opts = append(opts, goka.WithEmitterTester(p.cfg.Tester))
	} else {
		sc, err := p.cfg.clientConfig()
		if err != nil {
			return nil, err
		}
		tmb, err := p.topicManagerBuilder()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(sc)), goka.WithEmitterTopicManagerBuilder(tmb))
	}
	opts = append(opts, goka.WithEmitterHasher(kafkahash.New))
	e, err := goka.NewEmitter(p.cfg.Brokers, goka.Stream(p.cfg.DeadLetterTopic), raw, opts...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter emitter: %w", err)
	}
	return e, nil
}

// compact drops the tombstones of the topology's tables whose delete is
// older than Config.MarkerRetention, as the marker sweep does for tables.
func (s *postgresSink) compact(ctx context.Context) {
	for _, t := range engine.SinksOf(s.p.topo.Engine()).Tables {
		n, err := s.w.Compact(ctx, t, time.Now().Add(-s.p.cfg.MarkerRetention))
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			s.p.cfg.Logger.Warn("tombstone sweep failed; next time", "topology", s.p.topo.Name, "table", t.Target, "err", err)
		case n > 0:
			s.p.counters.compactions.Add(n)
			s.p.counters.promCompacted.Add(float64(n))
		}
	}
}
