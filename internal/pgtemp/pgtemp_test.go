package pgtemp

import (
	"context"
	"testing"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TestThrowawayServers starts a cluster and a Redis, uses them, and stops
// them.
func TestThrowawayServers(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	bin, err := FindBin()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var wal string
	err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&wal)
	conn.Close(ctx)
	if err != nil || wal != "logical" {
		t.Errorf("wal_level %q, %v", wal, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, c.DSN()); err == nil {
		t.Error("the cluster still answers once stopped")
	}

	r, err := StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}
