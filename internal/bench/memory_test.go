package bench

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcflow/cdcflow/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// TestMemoryScenarioFailsOverTheBound runs the memory scenario against the
// real services with a bound no capture can stay under: the scenario fails
// saying so, still reports the peak RSS it measured, and drops its slot.
func TestMemoryScenarioFailsOverTheBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cdcflow and runs it against the services")
	}
	bin := filepath.Join(t.TempDir(), "cdcflow")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cdcflow/cdcflow/cmd/cdcflow").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sizes := Smoke
	sizes.LargeTx, sizes.RSSBoundMiB = 20_000, 1
	b := &Bench{cfg: Config{PGDSN: testenv.PGDSN(t), Brokers: testenv.KafkaBrokers(t), RegistryURL: testenv.RegistryURL(t),
		RedisAddr: testenv.RedisAddr(t), Capture: bin, Sizes: sizes}, log: slog.New(slog.NewTextHandler(t.Output(), nil)), res: newResults(sizes)}
	err := b.memory(context.Background())
	if err == nil || !strings.Contains(err.Error(), "over the 1 MiB bound") {
		t.Fatalf("memory scenario with a 1 MiB bound: %v, want it over the bound", err)
	}
	if len(b.res.Memory) != 1 || b.res.Memory[0].MiB < 5 || b.res.Memory[0].BoundMiB != 1 {
		t.Fatalf("memory figures %+v, want capture's peak RSS (several MiB) against the 1 MiB bound", b.res.Memory)
	}
	db, err := pgx.Connect(context.Background(), b.cfg.PGDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if len(b.stems) != 1 {
		t.Fatalf("the scenario made things under %v, want one name", b.stems)
	}
	var left int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", b.stems[0]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("slot %s left behind", b.stems[0])
	}
}
