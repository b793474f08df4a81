package testenv

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChangeVersioned changes table, whose columns are (id int PRIMARY KEY,
// version int NOT NULL, pad text NOT NULL), until stop is called, as an
// application would while capture reads it: small transactions of one to
// four changes to random ids from 1 to maxID, 60% updates (version + 1,
// pad 'updated'), 20% deletes and 20% inserts (pad 'inserted'; of an id
// that exists, version + 1 and pad unchanged). stop waits for the
// transaction under way to commit, so that every change the table shows
// afterwards was committed before stop returned, and returns how many
// transactions committed; an error fails the test.
func ChangeVersioned(t testing.TB, dsn, table string, maxID int) (stop func() (txs int)) {
	t.Helper()
	ctx := context.Background()
	w, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var stopping atomic.Bool
	var wg sync.WaitGroup
	var txs int
	var werr error
	update := "UPDATE " + table + " SET version = version + 1, pad = 'updated' WHERE id = $1"
	del := "DELETE FROM " + table + " WHERE id = $1"
	insert := "INSERT INTO " + table + " VALUES ($1, 1, 'inserted') ON CONFLICT (id) DO UPDATE SET version = " + table + ".version + 1"
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Close(ctx)
		for !stopping.Load() {
			tx, err := w.Begin(ctx)
			for n := rand.IntN(4) + 1; err == nil && n > 0; n-- {
				stmt := update
				switch r := rand.IntN(10); {
				case r >= 8:
					stmt = insert
				case r >= 6:
					stmt = del
				}
				_, err = tx.Exec(ctx, stmt, rand.IntN(maxID)+1)
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
			if err != nil {
				werr = err
				return
			}
			txs++
			time.Sleep(time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			stopping.Store(true)
			wg.Wait()
			if werr != nil {
				t.Errorf("writer of %s: %v", table, werr)
			}
		})
		return txs
	}
	t.Cleanup(func() { stop() })
	return stop
}
