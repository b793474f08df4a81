package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cdcflow/cdcflow/internal/inspect"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kerr"
)

// resetCmd deletes what topologies keep, so that their next run rebuilds
// it from the start of their inputs.
type resetCmd struct {
	All        bool     `name:"all" help:"Reset every topology of the binary."`
	Yes        bool     `name:"yes" short:"y" help:"Reset without asking for confirmation (needed when stdin is not a terminal)."`
	Topologies []string `arg:"" optional:"" name:"topology" help:"Topologies to reset: ${topologies}."`
}

// resetPlan is what a reset deletes, and what it keeps.
type resetPlan struct {
	groups    []string // consumer groups
	topics    []string // table, loop and updates topics that exist
	redisKeys []string
	indexes   []string // search indexes that exist
	stateDirs []string // local table state that exists
	kept      []string // lines on what stays, and why
}

func (c *resetCmd) Run(ctx context.Context, e *env) error {
	f := e.flags
	switch {
	case c.All && len(c.Topologies) > 0:
		return errors.New("name topologies or pass --all, not both")
	case !c.All && len(c.Topologies) == 0:
		topos, err := declare(Source{Prefix: f.TopicPrefix, Schema: f.Schema}, e.fns)
		if err != nil {
			return err
		}
		var names []string
		for _, t := range topos {
			names = append(names, t.Name)
		}
		return fmt.Errorf("name the topologies to reset (%s), or pass --all", strings.Join(names, ", "))
	}
	topos, svc, err := e.open(ctx, c.Topologies)
	if err != nil {
		return err
	}
	defer svc.close()
	k, rdb, es := svc.kafka, svc.redis, svc.es
	sinks := sinksOf(topos)

	// Never under a running processor: it would write into what is deleted.
	var plan resetPlan
	var running []string
	existing, err := k.ListTopics(ctx, "")
	if err != nil {
		return err
	}
	var inputs, events []string
	for _, t := range topos {
		d := deploymentOf(f.Group, t)
		groups, err := k.DescribeGroups(ctx, d.groupNames()...)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if len(g.Members) > 0 {
				running = append(running, fmt.Sprintf("consumer group %s of topology %s has members (%s)", g.Name, t.Name, strings.Join(g.Members, ", ")))
			}
			if g.State != "Dead" {
				plan.groups = append(plan.groups, g.Name)
			}
		}
		for _, g := range d.groups {
			for _, topic := range g.internal {
				if _, found := slices.BinarySearch(existing, topic); found {
					plan.topics = append(plan.topics, topic)
				}
			}
		}
		if rdb != nil {
			keys, err := inspect.RedisKeys(ctx, rdb, f.RedisPrefix+":"+t.Name+":")
			if err != nil {
				return err
			}
			plan.redisKeys = append(plan.redisKeys, keys...)
		}
		if f.StateDir != "" {
			if dir := filepath.Join(f.StateDir, t.Name); exists(dir) {
				plan.stateDirs = append(plan.stateDirs, dir)
			}
		}
		inputs = append(inputs, d.changeTopics...)
		events = append(events, d.eventTopics...)
		plan.kept = append(plan.kept, "dead-letter topic "+d.deadLetter+": what the topology set aside stays there")
	}
	if len(running) > 0 {
		return fmt.Errorf("the processors are running: %s; stop them, then reset", strings.Join(running, "; "))
	}
	for _, x := range sinks.Indexes {
		if ok, err := indexExists(ctx, es, x.Name); err != nil {
			return err
		} else if ok {
			plan.indexes = append(plan.indexes, x.Name)
		}
	}
	slices.Sort(events)
	for _, topic := range slices.Compact(events) {
		plan.kept = append(plan.kept, "event topic "+topic+": the events are kept for the projections that read them; an events node emits its events again as it rebuilds (with the same event ids, which projections drop as duplicates)")
	}
	truncated, err := k.Truncated(ctx, inputs...)
	if err != nil {
		return err
	}
	for _, topic := range truncated {
		plan.kept = append(plan.kept, "WARNING: "+topic+" no longer holds its first records (retention deleted them): a rebuild misses the rows they carried")
	}

	plan.print(e.stdout)
	if plan.empty() {
		fmt.Fprintln(e.stdout, "reset: nothing to delete")
		return nil
	}
	if !c.Yes {
		if !e.stdin.terminal {
			return errors.New("reset asks for confirmation, and stdin is not a terminal: pass --yes to reset without asking")
		}
		fmt.Fprint(e.stdout, "Delete all of the above? [y/N] ")
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("not reset: nothing was deleted")
		}
	}
	if err := plan.apply(ctx, k, rdb, es); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "reset: done; the next run rebuilds the topologies from the start of their inputs")
	return nil
}

func (p *resetPlan) empty() bool {
	return len(p.groups)+len(p.topics)+len(p.redisKeys)+len(p.indexes)+len(p.stateDirs) == 0
}

func (p *resetPlan) print(w io.Writer) {
	list := func(what string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", what)
		for _, it := range items {
			fmt.Fprintf(w, "  %s\n", it)
		}
	}
	list("delete consumer groups (their offsets)", p.groups)
	list("delete topics (tables and internal topics)", p.topics)
	if n := len(p.redisKeys); n > 10 {
		list(fmt.Sprintf("delete Redis keys (%d)", n), append(slices.Clone(p.redisKeys[:10]), fmt.Sprintf("... and %d more", n-10)))
	} else {
		list("delete Redis keys", p.redisKeys)
	}
	list("delete search indexes (the processor creates them again)", p.indexes)
	list("delete local table state", p.stateDirs)
	list("keep", p.kept)
}

// apply deletes what p lists, and waits until Kafka has deleted the topics
// (a processor started before cannot create them again).
func (p *resetPlan) apply(ctx context.Context, k *inspect.Kafka, rdb *redis.Client, es *elasticsearch.Client) error {
	adm := k.Admin()
	if len(p.groups) > 0 {
		res, err := adm.DeleteGroups(ctx, p.groups...)
		if err != nil {
			return fmt.Errorf("delete consumer groups: %w", err)
		}
		for _, g := range p.groups {
			if r, ok := res[g]; ok && r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
				if errors.Is(r.Err, kerr.NonEmptyGroup) {
					return fmt.Errorf("delete consumer group %s: a processor joined it meanwhile; stop it, then reset again", g)
				}
				return fmt.Errorf("delete consumer group %s: %w", g, r.Err)
			}
		}
	}
	if len(p.topics) > 0 {
		res, err := adm.DeleteTopics(ctx, p.topics...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, r := range res {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
			}
		}
		if err := waitTopicsGone(ctx, k, p.topics); err != nil {
			return err
		}
	}
	for keys := p.redisKeys; len(keys) > 0; {
		n := min(len(keys), 500)
		if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("delete Redis keys: %w", err)
		}
		keys = keys[n:]
	}
	for _, index := range p.indexes {
		res, err := esapi.IndicesDeleteRequest{Index: []string{index}}.Do(ctx, es)
		if err != nil {
			return fmt.Errorf("delete search index %s: %w", index, err)
		}
		res.Body.Close()
		if res.IsError() && res.StatusCode != http.StatusNotFound {
			return fmt.Errorf("delete search index %s: Elasticsearch answered %s", index, res.Status())
		}
	}
	for _, dir := range p.stateDirs {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("delete local table state: %w", err)
		}
	}
	return nil
}

// waitTopicsGone waits until Kafka lists none of topics, for at most a
// minute.
func waitTopicsGone(ctx context.Context, k *inspect.Kafka, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		existing, err := k.ListTopics(ctx, "")
		if err != nil {
			return err
		}
		left := slices.DeleteFunc(slices.Clone(topics), func(t string) bool {
			_, found := slices.BinarySearch(existing, t)
			return !found
		})
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Kafka still lists %s a minute after deleting them", strings.Join(left, ", "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// indexExists tells whether Elasticsearch has the index.
func indexExists(ctx context.Context, es *elasticsearch.Client, index string) (bool, error) {
	res, err := esapi.IndicesExistsRequest{Index: []string{index}}.Do(ctx, es)
	if err != nil {
		return false, fmt.Errorf("look up search index %s: %w", index, err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("look up search index %s: Elasticsearch answered %s", index, res.Status())
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
