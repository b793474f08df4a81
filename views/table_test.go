package views_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cdcflow/cdcflow/views"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
)

// view is what the helpers need of a table, of any value type.
type view interface {
	Topic() string
	Run(ctx context.Context) error
	Recovered() bool
}

// startTable runs table; stop ends its context and checks that Run then
// returns nil.
func startTable(t *testing.T, table view) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- table.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run of %s after cancel: %v", table.Topic(), err)
		}
	}
}

// runTable runs table until the test ends.
func runTable(t *testing.T, table view) {
	t.Helper()
	t.Cleanup(startTable(t, table))
}

// waitRecovered waits until every view recovered, failing the test after
// 30s.
func waitRecovered(t *testing.T, vs ...view) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, v := range vs {
		for !v.Recovered() {
			if time.Now().After(deadline) {
				t.Fatalf("view of %s did not recover in 30s", v.Topic())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestNewTableReportsEveryProblem(t *testing.T) {
	uncommitted := sarama.NewConfig()
	tests := []struct {
		name    string
		brokers []string
		topic   goka.Table
		opts    []views.TableOption
		want    []string
	}{
		{
			name: "nothing",
			want: []string{"no table topic: name the goka group table", "table : no Kafka brokers"},
		},
		{
			name:    "read_uncommitted",
			brokers: []string{"127.0.0.1:9092"}, topic: "orders-table",
			opts: []views.TableOption{views.WithSaramaConfig(uncommitted)},
			want: []string{"table orders-table: the sarama config reads uncommitted records; set Consumer.IsolationLevel = sarama.ReadCommitted"},
		},
		{
			name:    "nil codec and storage",
			brokers: []string{"127.0.0.1:9092"}, topic: "orders-table",
			opts: []views.TableOption{views.WithCodec(nil), views.WithStorage(nil)},
			want: []string{"table orders-table: nil codec", "table orders-table: nil storage builder"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := views.NewTable[summary](tc.brokers, tc.topic, tc.opts...)
			if err == nil {
				t.Fatal("NewTable succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewTable error\n%v\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestTableFollowsItsTopic(t *testing.T) {
	// goka's tester cannot hand a view records that were in its topic
	// before it started (its consumer races the view's switch from recovery
	// to catching up), so records come after recovery here; the
	// integration test recovers real ones.
	tt := tester.New(t)
	const topic = "orders-table"

	table, err := views.NewTable[summary](nil, topic, views.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := table.Get("1"); !errors.Is(err, views.ErrNotReady) {
		t.Fatalf("Get before Run: error = %v, want ErrNotReady", err)
	}
	runTable(t, table)
	waitRecovered(t, table)
	tt.Consume(topic, "1", summary{ID: 1, Status: "new"})
	tt.Consume(topic, "2", summary{ID: 2, Status: "paid"})

	mustGet := func(key string, want summary, wantOK bool) {
		t.Helper()
		got, ok, err := table.Get(key)
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("Get(%q) = %+v, %v, %v; want %+v, %v, nil", key, got, ok, err, want, wantOK)
		}
	}
	mustGet("1", summary{ID: 1, Status: "new"}, true)
	mustGet("2", summary{ID: 2, Status: "paid"}, true)
	mustGet("3", summary{}, false)

	tt.Consume(topic, "1", summary{ID: 1, Status: "shipped"})
	mustGet("1", summary{ID: 1, Status: "shipped"}, true)
	tt.Consume(topic, "2", nil) // a tombstone deletes the key
	mustGet("2", summary{}, false)

	var keys []string
	if err := table.Each(func(key string, v summary) bool {
		keys = append(keys, key)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"1"}) {
		t.Errorf("Each visited %v, want [1]", keys)
	}

	if err := table.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "Run called twice") {
		t.Errorf("second Run: error = %v, want Run called twice", err)
	}
}

func TestTableStopsServingWhenRunEnds(t *testing.T) {
	tt := tester.New(t)
	table, err := views.NewTable[summary](nil, "orders-table", views.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	stop := startTable(t, table)
	waitRecovered(t, table)
	tt.Consume("orders-table", "1", summary{ID: 1})
	if _, ok, err := table.Get("1"); !ok || err != nil {
		t.Fatalf("Get while running = %v, %v", ok, err)
	}
	stop()
	if table.Recovered() {
		t.Error("Recovered after Run returned")
	}
	if _, _, err := table.Get("1"); !errors.Is(err, views.ErrNotReady) {
		t.Errorf("Get after Run returned: error = %v, want ErrNotReady", err)
	}
	if err := table.Each(func(string, summary) bool { return true }); !errors.Is(err, views.ErrNotReady) {
		t.Errorf("Each after Run returned: error = %v, want ErrNotReady", err)
	}
}

func TestTableWithOtherCodec(t *testing.T) {
	tt := tester.New(t)
	statuses, err := views.NewTable[string](nil, "statuses-table", views.WithTester(tt), views.WithCodec(new(codec.String)))
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := views.NewTable[summary](nil, "other-table", views.WithTester(tt), views.WithCodec(new(codec.String)))
	if err != nil {
		t.Fatal(err)
	}
	runTable(t, statuses)
	runTable(t, wrong)
	waitRecovered(t, statuses, wrong)

	tt.Consume("statuses-table", "1", "paid")
	if got, ok, err := statuses.Get("1"); got != "paid" || !ok || err != nil {
		t.Errorf("Get = %q, %v, %v; want paid", got, ok, err)
	}
	tt.Consume("other-table", "1", "paid")
	_, _, err = wrong.Get("1")
	if want := `table other-table: key "1": codec *codec.String decoded a string, not a views_test.summary`; err == nil || err.Error() != want {
		t.Errorf("Get with a codec of another type: error = %v, want %q", err, want)
	}
}

func TestTableKafkaUnreachable(t *testing.T) {
	table, err := views.NewTable[summary]([]string{"127.0.0.1:1"}, "orders-table")
	if err != nil {
		t.Fatal(err)
	}
	err = table.Run(context.Background())
	for _, want := range []string{"table orders-table: Kafka unreachable at [127.0.0.1:1]", "check the brokers and that Kafka is running"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run error = %v; want it to say %q", err, want)
		}
	}
}
