package orders_test

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/examples/orders"
	"github.com/cdcflow/cdcflow/examples/orders/loadgen"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/cdcflow/cdcflow/topologies/topotest"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOrderEventsExactlyOnceAcrossKills runs the order events topology as a
// processor binary while a writer commits order lifecycles, and kills the
// binary with SIGKILL six times, as soon as it has published events (its
// transaction likely open) or a while after; then lets a last run catch up. A read_committed consumer of the
// event topic must see every event the committed changes derive exactly
// once (counted by deterministic event id): none missing, none twice.
func TestOrderEventsExactlyOnceAcrossKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "evkill", 3)
	stem, brokers := c.stem, c.brokers
	output := "events." + stem + ".Order"

	bin := filepath.Join(t.TempDir(), "eventsproc")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/eventsproc").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := func() *killable {
		t.Helper()
		return startKillable(t, bin, "--kafka-brokers", strings.Join(brokers, ","), "--registry-url", testenv.RegistryURL(t),
			"--topic-prefix", stem, "--schema", stem, "--group", stem, "--http-addr", "")
	}

	// The writer: order lifecycles, 40 operations a second.
	wconn, err := pgx.Connect(ctx, testenv.PGDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(context.Background())
	gen, err := loadgen.New(ctx, wconn, loadgen.Config{Schema: stem, Rate: 40, Seed: 12})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- gen.Run(wctx) }()

	adm := kadm.NewClient(mustClient(t, brokers))
	published := func() int64 { // records on the event topic, markers and aborted ones included
		ends, err := adm.ListEndOffsets(ctx, output)
		if err != nil {
			return 0
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += max(o.Offset, 0) })
		return n
	}
	const kills = 6
	for i := range kills {
		p := start()
		before := published()
		deadline := time.Now().Add(2 * time.Minute)
		for published() <= before {
			if time.Now().After(deadline) {
				t.Fatalf("run %d published nothing in 2 minutes; its log:\n%s", i+1, p.output())
			}
			if p.exited() {
				t.Fatalf("run %d exited before it was killed; its log:\n%s", i+1, p.output())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if i%2 == 1 {
			// Mid-stream: the processor deriving, the relay between
			// transactions or in one.
			time.Sleep(time.Duration(300+rand.IntN(1500)) * time.Millisecond)
		} // else at once: the relay's transaction is likely still open
		p.kill(t)
		t.Logf("kill %d: the event topic holds %d records", i+1, published())
	}
	stopWriter()
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("writer committed %v", gen.Stats())
	// A last order after the writer's: capture publishes in commit order,
	// so once its change is on the topic, every committed change is.
	const lastOrder = 999_999
	c.exec(ctx, t, "INSERT INTO "+c.table+" (id, customer_id, amount, created_at) VALUES ($1, 1, 1.00, now())", lastOrder)

	dec := serde.NewDecoder(c.reg)
	last := start()
	defer last.stop(t)
	var expected []topotest.Event
	var counts map[string]int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		// What the committed changes derive, by the topology's own rules.
		h := topotest.New(t, orders.Events(stem, stem, output))
		sawLast := false
		for _, r := range committedRecords(ctx, t, brokers, c.topic) {
			rec := topotest.Record{Topic: r.Topic}
			if rec.Key, err = dec.DecodeKey(ctx, r.Key); err != nil {
				t.Fatal(err)
			}
			if r.Value != nil {
				if rec.Event, err = dec.DecodeEvent(ctx, r.Value); err != nil {
					t.Fatal(err)
				}
			}
			sawLast = sawLast || rec.Key["id"] == int64(lastOrder)
			h.Redeliver(rec)
		}
		expected = h.Events()
		counts = map[string]int{}
		for _, r := range committedRecords(ctx, t, brokers, output) {
			ev, _, err := dec.DecodeEventRecord(ctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			counts[ev.ID]++
		}
		if sawLast && len(counts) >= len(expected) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the event topic holds %d distinct events of the %d expected (capture published the last order: %t); the last run's log:\n%s",
				len(counts), len(expected), sawLast, last.output())
		}
		time.Sleep(time.Second)
	}
	if len(expected) < 200 {
		t.Fatalf("only %d events derived: the load was too light to tell", len(expected))
	}
	want := map[string]bool{}
	var missing, twice []string
	for _, e := range expected {
		want[e.ID] = true
		switch n := counts[e.ID]; {
		case n == 0:
			missing = append(missing, e.Type+" of "+e.AggregateID+" at "+e.Position.String())
		case n > 1:
			twice = append(twice, e.Type+" of "+e.AggregateID+" at "+e.Position.String())
		}
	}
	var unexpected int
	for id := range counts {
		if !want[id] {
			unexpected++
		}
	}
	if len(missing)+len(twice)+unexpected > 0 || len(want) != len(expected) {
		t.Fatalf("of %d events: %d missing %v, %d published more than once %v, %d not derived from any committed change",
			len(expected), len(missing), missing, len(twice), twice, unexpected)
	}
	if r := topicRetention(ctx, t, adm, output); r != "-1" {
		t.Errorf("event topic %s has retention.ms=%s, want -1 (kept forever)", output, r)
	}
	aborted := len(readRecords(ctx, t, brokers, output, kgo.ReadUncommitted())) - len(expected)
	t.Logf("%d events, each exactly once, across %d kills; the topic also holds %d records of aborted relay transactions, which read_committed consumers skip",
		len(expected), kills, aborted)
}

func mustClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// killable is a processor binary running, its log kept.
type killable struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  []string
}

func startKillable(t *testing.T, bin string, args ...string) *killable {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k := &killable{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			k.mu.Lock()
			k.log = append(k.log, sc.Text())
			k.mu.Unlock()
		}
		cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return k
}

func (k *killable) output() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.log, "\n")
}

func (k *killable) exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (k *killable) kill(t *testing.T) {
	t.Helper()
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-k.done
}

// stop sends SIGTERM and waits for a clean exit.
func (k *killable) stop(t *testing.T) {
	t.Helper()
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(time.Minute):
		t.Errorf("the processor did not stop within a minute of SIGTERM; its log:\n%s", k.output())
	}
	if code := k.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the processor exited %d after SIGTERM; its log:\n%s", code, k.output())
	}
}

// topicRetention returns a topic's retention.ms.
func topicRetention(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) string {
	t.Helper()
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		err = rc[0].Err
	}
	if err != nil {
		t.Fatalf("configs of topic %s: %v", topic, err)
	}
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" {
			return c.MaybeValue()
		}
	}
	t.Fatalf("topic %s has no retention.ms", topic)
	return ""
}
