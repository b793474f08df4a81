package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestServicesAreTheOnesTestsNeed checks that what scripts/services started
// is configured the way the integration tests rely on.
func TestServicesAreTheOnesTestsNeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tc := range []struct{ dsn, want string }{{PGDSN(t), "logical"}, {PGBadWALDSN(t), "replica"}} {
		conn, err := pgx.Connect(ctx, tc.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var level string
		if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != tc.want {
			t.Errorf("wal_level = %q (%v), want %s", level, err, tc.want)
		}
		conn.Close(ctx)
	}

	conn, err := pgx.Connect(ctx, PGTLSDSN(t))
	if err != nil {
		t.Fatalf("postgres over TLS (sslmode=verify-full): %v", err)
	}
	var ssl bool
	if err := conn.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Errorf("postgres over TLS: pg_stat_ssl.ssl = %v (%v), want true", ssl, err)
	}
	conn.Close(ctx)

	sasl := KafkaSASL(t)
	saslOpts, err := sasl.KgoOpts()
	if err != nil {
		t.Fatal(err)
	}
	skc, err := kgo.NewClient(saslOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer skc.Close()
	if brokers, err := kadm.NewClient(skc).ListBrokers(ctx); err != nil || len(brokers) != 1 {
		t.Errorf("kafka over SASL_SSL (%s): brokers = %v, %v; want one", sasl, brokers, err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr(t)})
	defer rdb.Close()
	if pong, err := rdb.Ping(ctx).Result(); err != nil || pong != "PONG" {
		t.Errorf("redis PING = %q, %v", pong, err)
	}

	kc, err := kgo.NewClient(kgo.SeedBrokers(KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers, err := kadm.NewClient(kc).ListBrokers(ctx)
	if err != nil || len(brokers) != 1 {
		t.Errorf("kafka brokers = %v, %v; want one", brokers, err)
	}

	reg, err := sr.NewClient(sr.URLs(RegistryURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Subjects(ctx); err != nil {
		t.Errorf("registry: list subjects: %v", err)
	}

	es := reachable(t, ESURLVar, hostOfURL(Get(ESURLVar)))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, es+"/_cluster/health?wait_for_status=yellow&timeout=30s", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Status        string `json:"status"`
		NumberOfNodes int    `json:"number_of_nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	if health.Status == "red" || health.Status == "" || health.NumberOfNodes != 1 {
		t.Errorf("elasticsearch health = %+v, want one node, not red", health)
	}
}
