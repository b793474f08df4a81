package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cdcflow/cdcflow/serde"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kadm"
)

// tableRefresh is when the replication loop looks for new tables next, and
// the tables of a pattern it found but cannot capture (no key), with the
// reason it last logged for each.
type tableRefresh struct {
	next     time.Time
	rejected map[string]string
}

// hasPatterns reports whether Tables selects tables by pattern.
func (c *Capture) hasPatterns() bool { return slices.ContainsFunc(c.cfg.Tables, hasWildcard) }

// refreshDue reports whether the loop should look for new tables now.
func (c *Capture) refreshDue(now time.Time) bool {
	if c.cfg.TableRefreshInterval <= 0 || !c.hasPatterns() {
		return false
	}
	if c.refresh.next.IsZero() {
		c.refresh.next = now.Add(c.cfg.TableRefreshInterval)
	}
	return !now.Before(c.refresh.next)
}

// newTables returns the tables that match the patterns of Config.Tables
// and are not captured yet, of those capture can capture; a table it cannot
// (no primary key or replica identity index) is logged once per reason and
// looked at again next time.
func (c *Capture) newTables(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	c.refresh.next = time.Now().Add(c.cfg.TableRefreshInterval)
	tables, err := resolveTables(ctx, conn, c.cfg.Tables, c.cfg.ExcludeTables)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, errNoTableMatches):
		return nil, nil // the tables captured were dropped: nothing new
	case err != nil:
		c.log.Warn("looking for new tables matching --tables failed; looking again later", "err", err)
		return nil, nil
	}
	var added []string
	for _, t := range tables {
		if slices.Contains(c.tables, t) {
			continue
		}
		if err := preflight(ctx, conn, []string{t}); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if c.refresh.rejected == nil {
				c.refresh.rejected = map[string]string{}
			}
			if c.refresh.rejected[t] != err.Error() {
				c.log.Warn("new table matches --tables but cannot be captured; looking again later", "table", t, "err", err)
				c.refresh.rejected[t] = err.Error()
			}
			continue
		}
		delete(c.refresh.rejected, t)
		added = append(added, t)
	}
	return added, nil
}

// restartInPlace ends the stream for Run to restart it: it commits what was
// produced and confirms it, as a shutdown does, and returns errRestart.
func (c *Capture) restartInPlace(repl *pgconn.PgConn, why string) error {
	c.ctl.setPhase(PhaseRestarting)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.pub.commit(ctx); err != nil {
		return fmt.Errorf("commit before restarting: %w", err)
	}
	if err := sendStatus(ctx, repl, c.pub.durable); err != nil {
		c.log.Warn("confirm position before restarting", "err", err)
	}
	c.log.Info("capture restarting in place", "reason", why, "confirmed", c.pub.durable.String(), "position", c.pub.last.String())
	return errRestart
}

// reload prepares Run's restart in place: the tables of Config.Tables as
// they are now (those that no longer exist are left out, new ones that
// cannot be captured too), added to the publication, their topics created,
// and the checkpoint to resume from, the publisher's. snapshotPlan then
// reads the new tables as tables added to the configuration.
func (c *Capture) reload(ctx context.Context, conn *pgx.Conn) error {
	tables, err := resolveTables(ctx, conn, c.cfg.Tables, c.cfg.ExcludeTables)
	if err != nil {
		return err
	}
	signals := ""
	if c.cfg.SignalTable != "" { // in the publication, not captured
		schema, table, _ := splitTable(c.cfg.SignalTable)
		signals = schema + "." + table
		tables = slices.DeleteFunc(tables, func(t string) bool { return t == signals })
	}
	var keep []string
	for _, t := range tables {
		if err := preflight(ctx, conn, []string{t}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn("table not captured", "table", t, "err", err)
			continue
		}
		keep = append(keep, t)
	}
	if len(keep) == 0 {
		return fmt.Errorf("no table of --tables %v can be captured any more", c.cfg.Tables)
	}
	published := keep
	if signals != "" {
		published = append(slices.Clone(keep), signals)
	}
	if err := ensurePublication(ctx, conn, c.cfg.Publication, published); err != nil {
		return err
	}
	adm := kadm.NewClient(c.kafka)
	for _, t := range keep {
		schema, name, _ := splitTable(t)
		if err := c.ensureTopic(ctx, adm, serde.Topic(c.cfg.TopicPrefix, schema, name)); err != nil {
			return err
		}
	}
	for _, t := range keep {
		if !slices.Contains(c.tables, t) {
			c.log.Info("table added", "table", t)
		}
	}
	c.tables = keep
	c.partitions = nil
	c.resume = c.pub.last
	c.ckpt = Checkpoint{Position: c.pub.last, Confirm: c.pub.complete, LastCommit: c.pub.lastCommit, Snapshot: c.pub.snapshot}
	c.ckptFound = true
	c.ctl.observe(func(ctl *control) {
		ctl.tables = slices.Clone(keep)
		ctl.restarts++
	})
	return nil
}
