package change

import (
	"math"
	"sort"
	"testing"
	"time"
)

func TestLSNRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		lsn  LSN
	}{
		{"zero", "0/0", 0},
		{"low", "0/16B3748", 0x16B3748},
		{"high", "16/B374D848", 0x16B374D848},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLSN(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.lsn || got.String() != tc.text {
				t.Fatalf("ParseLSN(%q) = %v (%d), want %d", tc.text, got, got, tc.lsn)
			}
		})
	}
	if _, err := ParseLSN("nonsense"); err == nil {
		t.Fatal("ParseLSN(nonsense) succeeded")
	}
}

func TestPositionStringsSortLikePositions(t *testing.T) {
	ps := []Position{
		{CommitLSN: 0x100, Index: 2},
		{CommitLSN: 0xF, Index: 9},
		{CommitLSN: 0x1_0000_0000, Index: 1},
		{CommitLSN: 0x100, Index: 10},
		{CommitLSN: 0x100, Index: 10, Sub: 1},
		{CommitLSN: 0x100, Index: 2, Sub: 0xFFFF_FFFF_FFFF},
		{CommitLSN: 0x100, Index: 2, Sub: 0x10},
		{},
	}
	byValue := append([]Position(nil), ps...)
	sort.Slice(byValue, func(i, j int) bool { return byValue[i].Compare(byValue[j]) < 0 })
	byString := append([]Position(nil), ps...)
	sort.Slice(byString, func(i, j int) bool { return byString[i].String() < byString[j].String() })
	for i := range byValue {
		if byValue[i] != byString[i] {
			t.Fatalf("order differs at %d: by value %v, by string %v", i, byValue, byString)
		}
		back, err := ParsePosition(byValue[i].String())
		if err != nil || back != byValue[i] {
			t.Fatalf("ParsePosition(%q) = %v, %v", byValue[i].String(), back, err)
		}
	}
}

func TestOpCodes(t *testing.T) {
	for _, s := range []string{"c", "u", "d", "r", "t"} {
		op, err := ParseOp(s)
		if err != nil || op.String() != s {
			t.Fatalf("ParseOp(%q) = %v, %v", s, op, err)
		}
	}
	if _, err := ParseOp("x"); err == nil {
		t.Fatal("ParseOp(x) succeeded")
	}
}

// TestSequenceRoundTrip: source.sequence is Debezium's SourceInfo.sequence,
// a JSON array of the last commit's end LSN (null before the first commit
// read) and the change's LSN, in decimal.
func TestSequenceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name            string
		lastCommit, lsn LSN
		text            string
	}{
		{"after a commit", 0x16B374D000, 0x16B374D848, `["97500057600","97500059720"]`},
		{"no commit read yet", 0, 24023128, `[null,"24023128"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := SequenceFor(tc.lastCommit, tc.lsn); s != tc.text {
				t.Fatalf("SequenceFor = %s, want %s", s, tc.text)
			}
			c, l, err := ParseSequence(tc.text)
			if err != nil || c != tc.lastCommit || l != tc.lsn {
				t.Fatalf("ParseSequence(%s) = %v %v %v", tc.text, c, l, err)
			}
		})
	}
	for _, bad := range []string{"", `["1"]`, `["1",null]`, `["x","1"]`, `[1,2]`} {
		if _, _, err := ParseSequence(bad); err == nil {
			t.Errorf("ParseSequence(%q) succeeded", bad)
		}
	}
}

func TestInfinityString(t *testing.T) {
	if PositiveInfinity.String() != "infinity" || NegativeInfinity.String() != "-infinity" {
		t.Fatalf("infinities print as %s and %s", PositiveInfinity, NegativeInfinity)
	}
}

func TestMicroDurationDuration(t *testing.T) {
	for _, tc := range []struct {
		in   MicroDuration
		want time.Duration
	}{
		{0, 0},
		{1_500_000, 1500 * time.Millisecond},
		{-1, -time.Microsecond},
		{math.MaxInt64, math.MaxInt64}, // beyond ±292 years: clamped
		{math.MinInt64, math.MinInt64},
	} {
		if got := tc.in.Duration(); got != tc.want {
			t.Errorf("MicroDuration(%d).Duration() = %v, want %v", int64(tc.in), got, tc.want)
		}
	}
}

// BenchmarkSequenceFor: capture works out a sequence for every change.
func BenchmarkSequenceFor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = SequenceFor(0x2F000000, 0x2F00A0B8)
	}
}
