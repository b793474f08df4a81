package views_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/internal/kafkahash"
	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/cdcflow/cdcflow/kafkaconn"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// kafkaConfig is the configuration of the test's processors: the views'
// own (processors.SaramaConfig's, which views must not import), reading a
// new group's inputs from the start.
func kafkaConfig() *sarama.Config {
	sc := views.SaramaConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	return sc
}

// readModels runs, on real Kafka, the two goka processors whose group tables
// the views serve: order summaries keyed by order id (a nil order deletes
// it), and a customer index keyed by customer id that lists the customer's
// order ids in the order they came.
type readModels struct {
	brokers              []string
	orders, index        *goka.Emitter // the processors' inputs
	summaries, customers goka.Table
	tmb                  goka.TopicManagerBuilder
}

func startReadModels(t *testing.T, brokers []string, run string) *readModels {
	t.Helper()
	// goka's builders set the ClientID of the config they hold: one config
	// each, so that no two clients race on one.
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	m := &readModels{brokers: brokers, tmb: goka.TopicManagerBuilderWithConfig(kafkaConfig(), tmc)}

	ordersTopic, customerTopic := goka.Stream(run+".orders"), goka.Stream(run+".customer-orders")
	tm, err := m.tmb(brokers)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []goka.Stream{ordersTopic, customerTopic} {
		if err := tm.EnsureStreamExists(string(s), 3); err != nil {
			t.Fatal(err)
		}
	}
	// The group tables too, as cdcflow's processors make them before their
	// groups start: goka asks a table's offsets the moment it has created it,
	// when a fresh Kafka may still answer "not the leader".
	topics := []string{string(ordersTopic), string(customerTopic)}
	for _, g := range []string{run + "-summaries", run + "-customers"} {
		table := string(goka.GroupTable(goka.Group(g)))
		if err := tm.EnsureTableExists(table, 3); err != nil {
			t.Fatal(err)
		}
		topics = append(topics, table)
	}
	tm.Close()
	client, err := sarama.NewClient(brokers, kafkaConfig())
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, stopWait := context.WithTimeout(context.Background(), time.Minute)
	err = kafkaconn.WaitLeaders(waitCtx, client, topics...)
	stopWait()
	client.Close()
	if err != nil {
		t.Fatal(err)
	}

	opts := func() []goka.ProcessorOption {
		return []goka.ProcessorOption{
			goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(kafkaConfig())),
			goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(kafkaConfig())),
			goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(kafkaConfig())),
			goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(kafkaConfig(), tmc)),
			goka.WithStorageBuilder(storage.MemoryBuilder()),
			goka.WithLogger(slog.NewLogLogger(slog.DiscardHandler, slog.LevelInfo)),
			goka.WithNilHandling(goka.NilProcess),
			// Tables partitioned as cdcflow's processors partition theirs,
			// which is how a Table finds a key.
			goka.WithHasher(kafkahash.New),
		}
	}
	summaries := goka.DefineGroup(goka.Group(run+"-summaries"),
		goka.Input(ordersTopic, views.JSON[summary]{}, func(ctx goka.Context, msg any) {
			if msg == nil {
				ctx.Delete()
				return
			}
			ctx.SetValue(msg)
		}),
		goka.Persist(views.JSON[summary]{}))
	customers := goka.DefineGroup(goka.Group(run+"-customers"),
		goka.Input(customerTopic, views.JSON[int64]{}, func(ctx goka.Context, msg any) {
			var entry CustomerOrders
			if v := ctx.Value(); v != nil {
				entry = v.(CustomerOrders)
			}
			if id := msg.(int64); !slices.Contains(entry.OrderIDs, id) {
				entry.OrderIDs = append(entry.OrderIDs, id)
			}
			ctx.SetValue(entry)
		}),
		goka.Persist(views.JSON[CustomerOrders]{}))
	m.summaries, m.customers = goka.GroupTable(summaries.Group()), goka.GroupTable(customers.Group())

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, g := range []*goka.GroupGraph{summaries, customers} {
		p, err := goka.NewProcessor(brokers, g, opts()...)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("processor %s: %v", g.Group(), err)
			}
		}()
		readyCtx, stop := context.WithTimeout(ctx, time.Minute)
		err = p.WaitForReadyContext(readyCtx)
		stop()
		if err != nil {
			cancel()
			t.Fatalf("processor %s not ready: %v", g.Group(), err)
		}
	}
	m.orders, err = goka.NewEmitter(brokers, ordersTopic, views.JSON[summary]{}, goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(kafkaConfig())))
	if err != nil {
		t.Fatal(err)
	}
	m.index, err = goka.NewEmitter(brokers, customerTopic, views.JSON[int64]{}, goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(kafkaConfig())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.orders.Finish()
		m.index.Finish()
		cancel()
		wg.Wait()
	})
	return m
}

// order writes an order's summary and indexes it under its customer.
func (m *readModels) order(t *testing.T, s summary) {
	t.Helper()
	if err := m.orders.EmitSync(fmt.Sprint(s.ID), s); err != nil {
		t.Fatal(err)
	}
	if err := m.index.EmitSync(fmt.Sprint(s.Customer), s.ID); err != nil {
		t.Fatal(err)
	}
}

// waitWritten waits until table's topic holds n records in all.
func (m *readModels) waitWritten(t *testing.T, table goka.Table, n int64) {
	t.Helper()
	tm, err := m.tmb(m.brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		parts, err := tm.Partitions(string(table))
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, p := range parts {
			hwm, err := tm.GetOffset(string(table), p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			total += hwm
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d records after a minute, want %d", table, total, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually repeats a request until it answers as wanted, for 30s.
func eventually(t *testing.T, base string, r request) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, body := get(t, base+r.path)
		if status == r.status && body == r.body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET %s = %d %s after 30s\nwant %d %s", r.name, r.path, status, body, r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServerOverKafka(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	run := fmt.Sprintf("views-it-%d", time.Now().UnixNano())
	m := startReadModels(t, brokers, run)

	// Written before the views start: they recover these.
	for _, s := range []summary{
		{ID: 1, Customer: 7, Status: "paid", Total: "10.00"},
		{ID: 2, Customer: 7, Status: "new", Total: "2.50"},
		{ID: 3, Customer: 8, Status: "new", Total: "1.00"},
		{ID: 4, Customer: 7, Status: "cancelled", Total: "0.00"},
	} {
		m.order(t, s)
	}
	m.waitWritten(t, m.summaries, 4)
	m.waitWritten(t, m.customers, 4)

	// The views' storage opens only once the test says so: until then they
	// cannot have recovered, whatever the timing.
	gate := make(chan struct{})
	var openGate sync.Once
	gated := func(topic string, partition int32) (storage.Storage, error) {
		<-gate
		return storage.NewMemory(), nil
	}
	api := newOrdersAPI(t, brokers, string(m.summaries), string(m.customers), views.WithStorage(gated))
	base := api.serve(t)
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) }) // runs before serve's cleanup

	notReady := fmt.Sprintf(`{"error":"%s, %s not caught up yet: not ready"}`, m.summaries, m.customers)
	checkRequests(t, base, []request{
		{"liveness while recovering", "/healthz", 200, `{"status":"ok"}`},
		{"readiness while recovering", "/readyz", 503, fmt.Sprintf(`{"ready":false,"views":{"%s":"recovering","%s":"recovering"}}`, m.customers, m.summaries)},
		{"lookup while recovering", "/order-summaries/1", 503, notReady},
	})

	openGate.Do(func() { close(gate) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := api.server.WaitReady(ctx); err != nil {
		t.Fatalf("views not ready after a minute: %v", err)
	}
	summaryNotFound := func(id string) string {
		return fmt.Sprintf(`{"error":"key \"%s\" not found in %s"}`, id, m.summaries)
	}
	checkRequests(t, base, []request{
		{"ready", "/readyz", 200, fmt.Sprintf(`{"ready":true,"views":{"%s":"recovered","%s":"recovered"}}`, m.customers, m.summaries)},
		{"lookup", "/order-summaries/1", 200, `{"id":1,"customer_id":7,"status":"paid","total":"10.00"}`},
		{"lookup on another partition", "/order-summaries/3", 200, `{"id":3,"customer_id":8,"status":"new","total":"1.00"}`},
		{"missing key", "/order-summaries/5", 404, summaryNotFound("5")},
		{"bad id", "/order-summaries/1x", 400, `{"error":"id \"1x\" is not a decimal integer"}`},
		{"fan-out", "/customers/7/orders", 200, `[` +
			`{"id":1,"customer_id":7,"status":"paid","total":"10.00"},` +
			`{"id":2,"customer_id":7,"status":"new","total":"2.50"},` +
			`{"id":4,"customer_id":7,"status":"cancelled","total":"0.00"}]`},
		{"fan-out of a missing customer", "/customers/9/orders", 404, fmt.Sprintf(`{"error":"key \"9\" not found in %s"}`, m.customers)},
	})

	// Writes after recovery show through the API.
	m.order(t, summary{ID: 1, Customer: 7, Status: "shipped", Total: "10.00"})
	eventually(t, base, request{"update", "/order-summaries/1", 200, `{"id":1,"customer_id":7,"status":"shipped","total":"10.00"}`})
	m.order(t, summary{ID: 5, Customer: 8, Status: "new", Total: "5.00"})
	eventually(t, base, request{"new order in the fan-out", "/customers/8/orders", 200,
		`[{"id":3,"customer_id":8,"status":"new","total":"1.00"},{"id":5,"customer_id":8,"status":"new","total":"5.00"}]`})
	if err := m.orders.EmitSync("2", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, base, request{"delete", "/order-summaries/2", 404, summaryNotFound("2")})
	eventually(t, base, request{"deleted order left out of the fan-out", "/customers/7/orders", 200, `[` +
		`{"id":1,"customer_id":7,"status":"shipped","total":"10.00"},` +
		`{"id":4,"customer_id":7,"status":"cancelled","total":"0.00"}]`})

	var keys []string
	if err := api.summaries.Each(func(key string, _ summary) bool {
		keys = append(keys, key)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"1", "3", "4", "5"}) {
		t.Errorf("Each visited %v, want [1 3 4 5]", keys)
	}
}

func TestTableTopicMissing(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	group := fmt.Sprintf("views-it-missing-%d", time.Now().UnixNano())
	topic := goka.GroupTable(goka.Group(group))
	table, err := views.NewTable[summary](brokers, topic, views.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	err = table.Run(context.Background())
	for _, want := range []string{
		fmt.Sprintf("table topic %s does not exist in Kafka at %v", topic, brokers),
		fmt.Sprintf("the processor of group %s creates it when it starts; start that processor first", group),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run error = %v; want it to say %q", err, want)
		}
	}

	// The view did not create the topic (the test broker auto-creates
	// topics a client asks metadata for).
	tmc := goka.NewTopicManagerConfig()
	tm, err := goka.NewTopicManager(brokers, kafkaConfig(), tmc)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	if parts, err := tm.Partitions(string(topic)); err == nil {
		t.Errorf("the view created %s (%d partitions)", topic, len(parts))
	}
}

func TestTableStateDirOverKafka(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	run := fmt.Sprintf("views-it-disk-%d", time.Now().UnixNano())
	m := startReadModels(t, brokers, run)
	dir := t.TempDir()
	m.order(t, summary{ID: 1, Customer: 7, Status: "paid"})
	m.order(t, summary{ID: 2, Customer: 8, Status: "new"})
	m.waitWritten(t, m.summaries, 2)

	// runOnce runs a table on dir until it recovered, checks what it holds,
	// and stops it.
	runOnce := func(want map[string]summary) {
		t.Helper()
		table, err := views.NewTable[summary](brokers, m.summaries, views.WithStateDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		stop := startTable(t, table)
		waitRecovered(t, table)
		checkEach(t, table, want)
		stop()
	}
	runOnce(map[string]summary{"1": {ID: 1, Customer: 7, Status: "paid"}, "2": {ID: 2, Customer: 8, Status: "new"}})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{string(m.summaries) + ".0", string(m.summaries) + ".1", string(m.summaries) + ".2"}; !slices.Equal(names, want) {
		t.Errorf("state dir holds %v, want one LevelDB per partition %v", names, want)
	}

	// Written while no table runs: the next one adds it to what it kept.
	m.order(t, summary{ID: 3, Customer: 7, Status: "new"})
	m.waitWritten(t, m.summaries, 3)
	runOnce(map[string]summary{
		"1": {ID: 1, Customer: 7, Status: "paid"},
		"2": {ID: 2, Customer: 8, Status: "new"},
		"3": {ID: 3, Customer: 7, Status: "new"},
	})
}
