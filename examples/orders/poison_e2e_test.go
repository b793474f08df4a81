package orders_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/processors"
	"github.com/cdcflow/cdcflow/serde"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// poisonRecord is a malformed record the test produced, and where it landed.
type poisonRecord struct {
	kind       string
	key, value []byte
	topic      string
	partition  int32
	offset     int64
}

// where names a record by its place in Kafka, as the dead-letter headers do.
func (r poisonRecord) where() string {
	return fmt.Sprintf("%s/%d@%d", r.topic, r.partition, r.offset)
}

// poisoner produces malformed records of every kind a processor must
// survive into a topic: random bytes, the wire-format header with a schema
// id the registry does not know, a real record cut short, and, on change
// topics, a real envelope under the key of another row and a real envelope
// of another table; each with a null, a random or a valid key.
type poisoner struct {
	cl  *kgo.Client
	rng *rand.Rand
	// real records to cut short or misplace, by topic
	templates map[string][]*kgo.Record
	produced  []poisonRecord
}

func (p *poisoner) produce(ctx context.Context, t *testing.T, topic string, changes bool) {
	t.Helper()
	r, real := p.rng, p.templates[topic]
	template := real[r.IntN(len(real))]
	randomBytes := func() []byte {
		b := make([]byte, 1+r.IntN(64))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	}
	keys := map[string][]byte{"null key": nil, "random key": randomBytes(), "valid key": template.Key}
	keyKind := slices.Sorted(maps.Keys(keys))[r.IntN(len(keys))]
	key := keys[keyKind]
	kinds := []string{"random bytes", "unknown schema id", "truncated"}
	if changes {
		kinds = append(kinds, "another row's key", "another table's change")
	}
	rec := poisonRecord{kind: kinds[r.IntN(len(kinds))], topic: topic, key: key}
	switch rec.kind {
	case "random bytes":
		rec.value = randomBytes()
	case "unknown schema id":
		rec.value = serde.AppendWire(nil, 2_000_000_000+r.IntN(1_000_000), randomBytes())
	case "truncated":
		rec.value = template.Value[:5+r.IntN(len(template.Value)-5)]
	case "another row's key":
		rec.value = template.Value // the templates hold two rows of each table at least (see the wait for them)
		for rec.key = template.Key; bytes.Equal(rec.key, template.Key); {
			rec.key = real[r.IntN(len(real))].Key
		}
	case "another table's change":
		var others []*kgo.Record
		for other, recs := range p.templates {
			if other != topic && changeTopic(other) {
				others = append(others, recs...)
			}
		}
		o := others[r.IntN(len(others))]
		rec.key, rec.value = o.Key, o.Value
	}
	if rec.kind != "another row's key" && rec.kind != "another table's change" {
		rec.kind += ", " + keyKind
	}
	res := p.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: rec.key, Value: rec.value})
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce a %s record to %s: %v", rec.kind, topic, err)
	}
	rec.partition, rec.offset = res[0].Record.Partition, res[0].Record.Offset
	p.produced = append(p.produced, rec)
}

// changeTopic tells the test's change topics (<stem>.<stem>.<table>) from
// its event topic (events.<stem>.Order).
func changeTopic(topic string) bool { return !strings.HasPrefix(topic, "events.") }

// TestPoisonRecordsNeverStopThePipeline runs capture and every processor of
// the example under a random order workload, and produces 1,200 malformed
// records of every kind, interleaved with the real changes, into the three
// change topics and the event topic. No processor may stop: every malformed
// record must reach the dead-letter topic of every topology that reads its
// topic, once, with its key, its value and headers naming the error and
// where it came from, and nothing else may; and afterwards every sink must
// say what SQL says.
func TestPoisonRecordsNeverStopThePipeline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "poison", 0)
	p := newPipeline(t, c, c.reg)
	p.startAll(ctx, t)
	w := newOrderWorkload(c, uint64(time.Now().UnixNano()))

	// Real records first: the malformed ones are cut from them or
	// misplaced.
	s := c.stem
	topics := []string{c.topic, serde.Topic(s, s, "customers"), serde.Topic(s, s, "order_items"), p.eventTopic}
	for _, stmt := range []string{
		"INSERT INTO " + s + ".customers VALUES (1, 'Ada', 'retail'), (2, 'Grace', 'b2b')",
		"INSERT INTO " + s + ".orders (id, customer_id, amount) VALUES (1, 1, 10.00), (2, 2, 20.50)",
		"INSERT INTO " + s + ".order_items VALUES (1, 1, 'pen', 3, 1.50), (2, 2, 'ink', 1, 4.99)",
	} {
		c.exec(ctx, t, stmt)
	}
	templates := map[string][]*kgo.Record{}
	p.waitFor(t, "real records on every topic", func() bool {
		for _, topic := range topics {
			templates[topic] = nil
			for _, r := range c.records(ctx, t, topic) {
				if r.Value != nil {
					templates[topic] = append(templates[topic], r)
				}
			}
			// "another row's key" needs two rows of each table
			keys := map[string]bool{}
			for _, r := range templates[topic] {
				keys[string(r.Key)] = true
			}
			if len(keys) == 0 || changeTopic(topic) && len(keys) < 2 {
				return false
			}
		}
		return true
	})
	cl := kgoClient(t, c.brokers)
	defer cl.Close()
	poison := &poisoner{cl: cl, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3)), templates: templates}

	// The workload, with malformed records in between.
	const rounds, perRound = 60, 20
	for range rounds {
		for range 5 {
			w.step(ctx, t)
		}
		for i := range perRound {
			topic := topics[i%len(topics)]
			poison.produce(ctx, t, topic, changeTopic(topic))
		}
	}
	injected := map[string][]poisonRecord{}
	kinds := map[string]int{}
	for _, r := range poison.produced {
		injected[r.topic] = append(injected[r.topic], r)
		kinds[r.kind]++
	}
	t.Logf("produced %d malformed records: %v", len(poison.produced), kinds)

	// Every sink agrees with SQL: the malformed records stopped nothing.
	p.waitForSQL(ctx, t, int64(len(injected[c.topic])))

	// Each topology dead-lettered what it read of them, and nothing else.
	want := map[string][]poisonRecord{
		metricsProc:     injected[c.topic],
		eventsProc:      injected[c.topic],
		summariesProc:   slices.Concat(injected[topics[0]], injected[topics[1]], injected[topics[2]]),
		projectionsProc: injected[p.eventTopic],
	}
	for name, records := range want {
		p.waitFor(t, name+" to dead-letter every malformed record", func() bool {
			return p.stats(name).DeadLetters >= int64(len(records))
		})
		checkDeadLetters(ctx, t, p, name, records)
	}
	p.stopAll(t)
	cancel()
	if err := <-c.done; err != nil {
		t.Errorf("capture: %v", err)
	}
}

// checkDeadLetters checks that the dead-letter topic of processor name holds
// exactly the records want, each once, with its key and value and the
// headers that say why and where from.
func checkDeadLetters(ctx context.Context, t *testing.T, p *pipeline, name string, want []poisonRecord) {
	t.Helper()
	byPlace := map[string]poisonRecord{}
	for _, r := range want {
		byPlace[r.where()] = r
	}
	got := p.c.records(ctx, t, p.deadLetterTopic(name))
	if len(got) != len(want) {
		t.Errorf("%s: %d dead letters, want %d", name, len(got), len(want))
	}
	seen := map[string]bool{}
	for _, d := range got {
		h := map[string]string{}
		for _, x := range d.Headers {
			h[x.Key] = string(x.Value)
		}
		partition, _ := strconv.Atoi(h[processors.HeaderPartition])
		offset, _ := strconv.ParseInt(h[processors.HeaderOffset], 10, 64)
		place := poisonRecord{topic: h[processors.HeaderTopic], partition: int32(partition), offset: offset}.where()
		r, ok := byPlace[place]
		switch {
		case !ok:
			t.Errorf("%s dead-lettered %s, which is not a malformed record (error %q)", name, place, h[processors.HeaderError])
		case seen[place]:
			t.Errorf("%s dead-lettered %s twice", name, place)
		case !bytes.Equal(d.Value, r.value) || string(d.Key) != string(r.key):
			t.Errorf("%s dead-lettered %s (%s) with another key or value", name, place, r.kind)
		case h[processors.HeaderError] == "" || h[processors.HeaderGroup] == "":
			t.Errorf("%s dead-lettered %s (%s) without the error or group header: %v", name, place, r.kind, h)
		}
		seen[place] = true
	}
	t.Logf("%s: %d dead letters, e.g. %q", name, len(got), firstError(got))
}

func firstError(recs []*kgo.Record) string {
	for _, r := range recs {
		for _, h := range r.Headers {
			if h.Key == processors.HeaderError {
				return string(h.Value)
			}
		}
	}
	return ""
}

// TestRegistryOutageDeadLettersNothing starts every processor while the
// schema registry is unreachable, so that none has a schema yet, keeps an
// order workload running for 30 seconds of outage, then brings the registry
// back: the processors must wait for it rather than dead-letter a record or
// stop, and every sink must then say what SQL says.
func TestRegistryOutageDeadLettersNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCapturedOrdersNamed(ctx, t, "outage", 0)
	registry, err := url.Parse(testenv.RegistryURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, registry.Host)
	reg, err := sr.NewClient(sr.URLs("http://" + proxy.Addr() + registry.Path))
	if err != nil {
		t.Fatal(err)
	}
	w := newOrderWorkload(c, uint64(time.Now().UnixNano()))
	for range 50 {
		w.step(ctx, t)
	}

	proxy.Block()
	p := newPipeline(t, c, reg)
	p.startAll(ctx, t)
	outage := time.Now()
	for time.Since(outage) < 30*time.Second {
		w.step(ctx, t)
		time.Sleep(50 * time.Millisecond)
	}
	for name := range p.procs {
		if st := p.stats(name); st.Changes != 0 || st.DeadLetters != 0 {
			t.Fatalf("%s handled %+v without a registry", name, st)
		}
	}
	proxy.Unblock()
	for range 50 {
		w.step(ctx, t)
	}

	p.waitForSQL(ctx, t, 0)
	for name := range p.procs {
		if st := p.stats(name); st.DeadLetters != 0 {
			t.Errorf("%s dead-lettered %d records", name, st.DeadLetters)
		}
		if n := len(c.records(ctx, t, p.deadLetterTopic(name))); n != 0 {
			t.Errorf("%s's dead-letter topic holds %d records", name, n)
		}
	}
	p.stopAll(t)
}
