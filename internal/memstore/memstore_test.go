package memstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lovoo/goka/storage"
)

// TestAgreesWithGokasMemoryStorage runs the same random writes and deletes
// on a Store and on goka's own memory storage: every read, the offset, and
// the iterators (whole and by range) agree.
func TestAgreesWithGokasMemoryStorage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ours, theirs := New(), storage.NewMemory()
	key := func() string { return fmt.Sprintf("k%03d", rng.IntN(300)) }
	for i := range 5000 {
		k := key()
		switch rng.IntN(3) {
		case 0, 1:
			v := []byte(fmt.Sprint(i))
			if err := ours.Set(k, v); err != nil {
				t.Fatal(err)
			}
			theirs.Set(k, v)
		case 2:
			ours.Delete(k)
			theirs.Delete(k)
		}
		probe := key()
		a, _ := ours.Get(probe)
		b, _ := theirs.Get(probe)
		ha, _ := ours.Has(probe)
		hb, _ := theirs.Has(probe)
		if string(a) != string(b) || ha != hb {
			t.Fatalf("op %d: %s = %q (%v), goka's %q (%v)", i, probe, a, ha, b, hb)
		}
	}
	ours.SetOffset(42)
	theirs.SetOffset(42)
	if a, _ := ours.GetOffset(-1); a != 42 {
		t.Fatalf("offset %d", a)
	}
	if err := ours.Set("x", nil); err == nil {
		t.Fatal("a nil value was written")
	}
	all := func(it storage.Iterator) []string {
		var out []string
		for it.Next() {
			v, _ := it.Value()
			out = append(out, string(it.Key())+"="+string(v))
		}
		it.Release()
		return out
	}
	a, _ := ours.Iterator()
	b, _ := theirs.Iterator()
	if x, y := all(a), all(b); fmt.Sprint(x) != fmt.Sprint(y) || len(x) == 0 {
		t.Fatalf("iterators differ:\n%v\n%v", x, y)
	}
	a, _ = ours.IteratorWithRange([]byte("k1"), nil)
	b, _ = theirs.IteratorWithRange([]byte("k1"), nil)
	if x, y := all(a), all(b); fmt.Sprint(x) != fmt.Sprint(y) || len(x) == 0 {
		t.Fatalf("range iterators differ:\n%v\n%v", x, y)
	}
	it, _ := ours.Iterator()
	if !it.Seek([]byte("k150")) || !it.Next() || string(it.Key()) < "k150" {
		t.Fatalf("seek to k150 landed on %q", it.Key())
	}
}

// BenchmarkFill writes n new keys, then deletes them: constant per key here,
// growing with n in goka's memory storage.
func BenchmarkFill(b *testing.B) {
	for _, impl := range []struct {
		name string
		new  func() storage.Storage
	}{{"memstore", func() storage.Storage { return New() }}, {"goka", storage.NewMemory}} {
		b.Run(impl.name, func(b *testing.B) {
			for range b.N {
				s := impl.new()
				for i := range 20000 {
					s.Set(fmt.Sprintf("key-%d", i), []byte("v"))
				}
				for i := range 20000 {
					s.Delete(fmt.Sprintf("key-%d", i))
				}
			}
		})
	}
}
