package localcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trypema-go/trypema"
)

var ctx = context.Background()

// fixture: W = 1 s, B = 100 ms, capacity 10 at 10/s, fake clock at 10,000.
func fixture(t *testing.T, opts ...trypema.Option) (*Absolute, *Suppressed, *trypema.ManualClock) {
	t.Helper()
	clk := trypema.NewManualClock(10_000)
	opts = append([]trypema.Option{trypema.WithWindow(time.Second), trypema.WithClock(clk),
		trypema.WithRandom(func() float64 { return 0.5 })}, opts...)
	a, s := mustAbsolute(t, opts...), mustSuppressed(t, opts...)
	t.Cleanup(func() { a.Close(); s.Close() })
	return a, s, clk
}

var ten = trypema.MustPerSecond(10)

func TestAbsoluteDecisions(t *testing.T) {
	a, _, clk := fixture(t)
	d, err := a.Inc(ctx, "k", ten, 4)
	want := trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: 10, Remaining: 6}
	if err != nil || d != want {
		t.Fatalf("first Inc = %+v, %v; want %+v", d, err, want)
	}
	clk.Advance(300 * time.Millisecond) // 10,300: a new bucket
	a.Inc(ctx, "k", ten, 6)
	clk.Advance(100 * time.Millisecond) // 10,400
	d, _ = a.Inc(ctx, "k", ten, 5)
	// The 4 units of 10,000 leave at 11,000 (600 ms): 4 < 5, so wait for 10,300's bucket: 11,300 (900 ms).
	want = trypema.Decision{Outcome: trypema.Rejected, Limit: 10, RetryAfter: 900 * time.Millisecond, RemainingAfterWaiting: 10}
	if d != want {
		t.Fatalf("Inc over capacity = %+v; want %+v", d, want)
	}
	d, _ = a.IsAllowed(ctx, "k")
	want = trypema.Decision{Outcome: trypema.Rejected, Limit: 10, RetryAfter: 600 * time.Millisecond, RemainingAfterWaiting: 4}
	if d != want {
		t.Fatalf("IsAllowed = %+v; want %+v", d, want)
	}
	clk.Set(11_000) // exactly W after the first bucket's last call: it has left
	d, _ = a.IsAllowed(ctx, "k")
	if want := (trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: 10, Remaining: 4}); d != want {
		t.Fatalf("IsAllowed at W = %+v; want %+v", d, want)
	}
	if d, _ := a.IsAllowed(ctx, "unknown"); d != (trypema.Decision{Outcome: trypema.Allowed, Admitted: true}) {
		t.Fatalf("IsAllowed(unknown) = %+v", d)
	}
}

func TestCoalescingEdge(t *testing.T) {
	a, _, clk := fixture(t)
	a.Inc(ctx, "k", ten, 1) // bucket starts at 10,000
	clk.Set(10_099)         // 99 ms after the start: joins, last = 10,099
	a.Inc(ctx, "k", ten, 1) //
	clk.Set(10_100)         // exactly B after the start: a new bucket
	a.Inc(ctx, "k", ten, 8) //
	clk.Set(11_099)         // first bucket's last call is W old: 2 units leave
	if s, _ := a.Get(ctx, "k"); s.Total != 8 {
		t.Fatalf("total at 11,099 = %d, want 8 (the joined bucket expires by its newest call)", s.Total)
	}
	// Reads record nothing, so the key's time is still its newest call
	// (10,100): at 11,098 the first bucket (last call 10,099) is live again,
	// exactly as the Lua scripts, which cannot write on a read, see it.
	clk.Set(11_098)
	if s, _ := a.Get(ctx, "k"); s.Total != 10 {
		t.Fatalf("after a read at 11,099 and a clock step back to 11,098: total %d, want 10", s.Total)
	}
	clk.Set(11_099)
	a.Inc(ctx, "k", ten, 1) // a write at 11,099 expires the first bucket for good
	clk.Set(11_098)         // treated as 11,099, the newest call
	if s, _ := a.Get(ctx, "k"); s.Total != 9 {
		t.Fatalf("a clock step back after a write revived expired units: total %d, want 9", s.Total)
	}
}

func TestStickyRate(t *testing.T) {
	a, _, clk := fixture(t)
	a.Inc(ctx, "k", ten, 1)
	d, _ := a.Inc(ctx, "k", trypema.MustPerSecond(1000), 1)
	if d.Limit != 10 {
		t.Fatalf("a later call's rate replaced the stored one: limit %d", d.Limit)
	}
	clk.Advance(time.Second) // all usage has left: the key is new again
	d, _ = a.Inc(ctx, "k", trypema.MustPerSecond(1000), 1)
	if d.Limit != 1000 {
		t.Fatalf("expired key kept its old rate: limit %d", d.Limit)
	}
}

func TestErrorsRecordNothing(t *testing.T) {
	a, s, _ := fixture(t)
	for _, l := range []trypema.Limiter{a, s} {
		_, err := l.Inc(ctx, "k", trypema.MustPerSecond(0.5), 1) // capacity 0 over 1 s
		if !errors.Is(err, trypema.ErrZeroCapacity) || !strings.Contains(err.Error(), "at least 2s") {
			t.Errorf("%T: zero capacity error = %v", l, err)
		}
		_, err = l.Inc(ctx, "k", ten, 11)
		if !errors.Is(err, trypema.ErrCountExceedsCapacity) || !strings.Contains(err.Error(), "11 units") {
			t.Errorf("%T: n > capacity error = %v", l, err)
		}
		if snap, _ := l.Get(ctx, "k"); snap.Exists {
			t.Errorf("%T: a failed call created state: %+v", l, snap)
		}
		l.Inc(ctx, "k", ten, 3)
		for _, bad := range []struct {
			key  string
			rate trypema.Rate
			n    int64
			kind error
		}{
			{"", ten, 1, trypema.ErrInvalidKey},
			{"a:b", ten, 1, trypema.ErrInvalidKey},
			{"k", 0, 1, trypema.ErrInvalidRate},
			{"k", ten, 0, trypema.ErrInvalidCount},
			{"k", ten, 1 << 53, trypema.ErrInvalidCount},
			{"k", ten, 11, trypema.ErrCountExceedsCapacity},
		} {
			if _, err := l.Inc(ctx, bad.key, bad.rate, bad.n); !errors.Is(err, bad.kind) {
				t.Errorf("%T: Inc(%q, %v, %d) = %v, want %v", l, bad.key, bad.rate, bad.n, err, bad.kind)
			}
		}
		if snap, _ := l.Get(ctx, "k"); snap.Total != 3 {
			t.Errorf("%T: bad calls changed the key: total %d, want 3", l, snap.Total)
		}
	}
}

func TestSetRateLimit(t *testing.T) {
	a, _, _ := fixture(t)
	prev, existed, err := a.SetRateLimit(ctx, "k", ten)
	if prev != 0 || existed || err != nil {
		t.Fatalf("SetRateLimit(unknown) = %v, %v, %v", prev, existed, err)
	}
	if s, _ := a.Get(ctx, "k"); s.Exists {
		t.Fatal("SetRateLimit created a key")
	}
	a.Inc(ctx, "k", ten, 8)
	prev, existed, err = a.SetRateLimit(ctx, "k", trypema.MustPerSecond(5))
	if prev != ten || !existed || err != nil {
		t.Fatalf("SetRateLimit = %v, %v, %v", prev, existed, err)
	}
	if d, _ := a.Inc(ctx, "k", ten, 1); d.Outcome != trypema.Rejected || d.Limit != 5 {
		t.Fatalf("after lowering to 5, 8 live units must reject: %+v", d)
	}
	if _, _, err := a.SetRateLimit(ctx, "k", trypema.MustPerSecond(0.1)); !errors.Is(err, trypema.ErrZeroCapacity) {
		t.Fatalf("zero-capacity rate accepted: %v", err)
	}
	if s, _ := a.Get(ctx, "k"); s.Rate != trypema.MustPerSecond(5) || s.Total != 8 {
		t.Fatalf("state after the refused change: %+v", s)
	}
}

// TestSetIf covers every comparator against a total below, equal to and
// above the target, in every history mode, on a key with two buckets.
func TestSetIf(t *testing.T) {
	for _, mode := range []trypema.HistoryMode{trypema.Replace, trypema.PreserveNewest, trypema.PreserveOldest} {
		for _, c := range []trypema.Comparator{trypema.Always, trypema.Eq, trypema.Ne, trypema.Lt, trypema.Le, trypema.Gt, trypema.Ge} {
			for _, target := range []int64{2, 6, 9, 0} { // total is 6: above, equal, below; 0 deletes
				t.Run(fmt.Sprintf("%v/%v/%d", mode, c, target), func(t *testing.T) {
					a, _, clk := fixture(t)
					a.Inc(ctx, "k", ten, 4)
					clk.Advance(200 * time.Millisecond)
					a.Inc(ctx, "k", ten, 2) // buckets [4 @10,000] [2 @10,200]
					res, err := a.SetIf(ctx, "k", trypema.MustPerSecond(20), c, target, mode)
					if err != nil {
						t.Fatal(err)
					}
					match := c.Match(6, target)
					want := trypema.SetResult{Matched: match, Previous: 6, Current: 6}
					if match {
						want.Current = target
					}
					if res != want {
						t.Fatalf("SetIf = %+v, want %+v", res, want)
					}
					snap, _ := a.Get(ctx, "k")
					if snap.Total != want.Current {
						t.Fatalf("Get total %d, want %d", snap.Total, want.Current)
					}
					if !match || target == 0 {
						if target == 0 && match && snap.Exists {
							t.Fatal("a match with n = 0 must delete the key")
						}
						if !match && snap.Rate != ten {
							t.Fatal("a miss changed the rate")
						}
						return
					}
					if snap.Rate != trypema.MustPerSecond(20) || snap.Limit != 20 {
						t.Fatalf("rate not replaced: %+v", snap)
					}
					// Where the units went shows in when they expire.
					clk.Set(11_000) // the bucket of 10,000 leaves
					after, _ := a.Get(ctx, "k")
					var oldest int64
					switch {
					case mode == trypema.Replace:
						oldest = 0 // one fresh bucket at 10,200
					case target > 6 && mode == trypema.PreserveOldest:
						oldest = 4 + target - 6
					case target > 6:
						oldest = 4
					case mode == trypema.PreserveNewest: // lowered from the oldest side
						oldest = max(0, 4-(6-target))
					default: // PreserveOldest lowers from the newest side
						oldest = min(4, target)
					}
					if got := target - after.Total; got != oldest {
						t.Fatalf("units in the oldest bucket = %d, want %d", got, oldest)
					}
				})
			}
		}
	}
}

func TestSetIfOnUnknownKeyAndBadInput(t *testing.T) {
	a, s, _ := fixture(t)
	res, err := a.SetIf(ctx, "new", ten, trypema.Lt, 5, trypema.PreserveOldest)
	if err != nil || res != (trypema.SetResult{Matched: true, Previous: 0, Current: 5}) {
		t.Fatalf("SetIf on a new key = %+v, %v", res, err)
	}
	if snap, _ := a.Get(ctx, "new"); snap.Total != 5 || snap.Rate != ten {
		t.Fatalf("new key state %+v", snap)
	}
	for _, l := range []trypema.Limiter{a, s} {
		for _, bad := range []struct {
			c    trypema.Comparator
			m    trypema.HistoryMode
			n    int64
			r    trypema.Rate
			kind error
		}{
			{9, trypema.Replace, 1, ten, trypema.ErrInvalidArg},
			{trypema.Always, 7, 1, ten, trypema.ErrInvalidArg},
			{trypema.Always, trypema.Replace, -1, ten, trypema.ErrInvalidCount},
			{trypema.Always, trypema.Replace, 1, trypema.MustPerSecond(0.1), trypema.ErrZeroCapacity},
		} {
			if _, err := l.SetIf(ctx, "new", bad.r, bad.c, bad.n, bad.m); !errors.Is(err, bad.kind) {
				t.Errorf("%T: SetIf(%v, %v, %d) = %v, want %v", l, bad.c, bad.m, bad.n, err, bad.kind)
			}
		}
	}
	if snap, _ := a.Get(ctx, "new"); snap.Total != 5 {
		t.Fatalf("bad SetIf calls changed the key: %+v", snap)
	}
}

func TestSuppressedLoweringKeepsDeclines(t *testing.T) {
	_, s, clk := fixture(t, trypema.WithHardLimitFactor(1.5))
	// Capacity 10, hard cap 15: 15 accepted, then declines at the hard cap.
	for i := 0; i < 15; i++ {
		s.Inc(ctx, "k", ten, 1)
	}
	for i := 0; i < 5; i++ {
		if d, _ := s.Inc(ctx, "k", ten, 1); d.Admitted || d.SuppressionFactor != 1 {
			t.Fatalf("above the hard cap: %+v", d)
		}
	}
	snap, _ := s.Get(ctx, "k")
	if want := (trypema.Snapshot{Exists: true, Total: 20, Declined: 5, Limit: 10, HardLimit: 15, Rate: ten, SuppressionFactor: 1}); snap != want {
		t.Fatalf("snapshot %+v, want %+v", snap, want)
	}
	clk.Advance(time.Millisecond)
	// One bucket of 20 with 5 declines, lowered to 7: floor(5 × 7 / 20) = 1.
	res, _ := s.SetIf(ctx, "k", ten, trypema.Gt, 7, trypema.PreserveNewest)
	if res != (trypema.SetResult{Matched: true, Previous: 20, Current: 7}) {
		t.Fatalf("SetIf = %+v", res)
	}
	snap, _ = s.Get(ctx, "k")
	if snap.Total != 7 || snap.Declined != 1 {
		t.Fatalf("after lowering: total %d declined %d, want 7 and 1", snap.Total, snap.Declined)
	}
	if u, ok, _ := s.Delete(ctx, "k"); u != 6 || !ok {
		t.Fatalf("Delete = %d, %v; want the accepted 6", u, ok)
	}
}

func TestSuppressedDecisions(t *testing.T) {
	_, s, _ := fixture(t, trypema.WithHardLimitFactor(1.5))
	for i := int64(1); i <= 10; i++ {
		d, _ := s.Inc(ctx, "k", ten, 1)
		if want := (trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: 10, Remaining: 10 - i}); d != want {
			t.Fatalf("call %d = %+v, want %+v", i, d, want)
		}
	}
	// A = S = 10 observed in one bucket under 1 s old: perceived = max(10/1, 10) = 10, f = 1 − 10/10 = 0.
	if f, _ := s.SuppressionFactor(ctx, "k"); f != 0 {
		t.Fatalf("factor at S with demand equal to the rate = %v, want 0", f)
	}
	d, _ := s.Inc(ctx, "k", ten, 1)
	if want := (trypema.Decision{Outcome: trypema.Suppressed, Admitted: true, Limit: 10}); d != want {
		t.Fatalf("above S with factor 0 = %+v, want %+v", d, want)
	}
	// 11 observed: the cached factor 0 is reused for 100 ms.
	if f, _ := s.SuppressionFactor(ctx, "k"); f != 0 {
		t.Fatalf("cached factor = %v", f)
	}
	if f, _ := s.SuppressionFactor(ctx, "unknown"); f != 0 {
		t.Fatalf("unknown key factor = %v", f)
	}
}

func TestDeleteGetClear(t *testing.T) {
	a, s, _ := fixture(t)
	if u, ok, err := a.Delete(ctx, "none"); u != 0 || ok || err != nil {
		t.Fatalf("Delete(unknown) = %d, %v, %v", u, ok, err)
	}
	if snap, err := a.Get(ctx, "none"); snap != (trypema.Snapshot{}) || err != nil {
		t.Fatalf("Get(unknown) = %+v, %v", snap, err)
	}
	if a.s.keys.Len() != 0 {
		t.Fatal("Get or Delete of an unknown key created an entry")
	}
	for i := 0; i < 5; i++ {
		a.Inc(ctx, fmt.Sprint("k", i), ten, int64(i+1))
		s.Inc(ctx, fmt.Sprint("k", i), ten, 1)
	}
	if u, ok, _ := a.Delete(ctx, "k2"); u != 3 || !ok {
		t.Fatalf("Delete = %d, %v", u, ok)
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if a.s.keys.Len() != 0 {
		t.Fatalf("Clear left %d keys", a.s.keys.Len())
	}
	if snap, _ := s.Get(ctx, "k4"); snap.Total != 1 {
		t.Fatal("Clear of one limiter touched another")
	}
	want := trypema.Snapshot{Exists: true, Total: 1, Limit: 10, HardLimit: 10, Rate: ten}
	if snap, _ := s.Get(ctx, "k0"); !cmp.Equal(snap, want) {
		t.Fatal(cmp.Diff(want, snap))
	}
}

func TestSweeperBoundsMemory(t *testing.T) {
	a, _, clk := fixture(t, trypema.WithSweepInterval(time.Hour)) // swept by hand below
	for i := 0; i < 10_000; i++ {
		a.Inc(ctx, fmt.Sprint("user_", i), ten, 1)
	}
	clk.Advance(500 * time.Millisecond)
	a.Inc(ctx, "late", ten, 1)
	a.s.sweep()
	if n := a.s.keys.Len(); n != 10_001 {
		t.Fatalf("sweep inside the window dropped live keys: %d left", n)
	}
	clk.Advance(500 * time.Millisecond) // the 10,000 have left the window, "late" has not
	a.s.sweep()
	if n := a.s.keys.Len(); n != 1 {
		t.Fatalf("after the window %d keys are held, want 1", n)
	}
	if snap, _ := a.Get(ctx, "late"); snap.Total != 1 {
		t.Fatal("the sweep dropped a live key")
	}
}

func TestBackgroundSweeperAndClose(t *testing.T) {
	clk := trypema.NewManualClock(0)
	a := mustAbsolute(t, trypema.WithWindow(time.Second), trypema.WithClock(clk), trypema.WithSweepInterval(time.Millisecond))
	a.Inc(ctx, "k", ten, 1)
	clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for a.s.keys.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a.s.keys.Len() != 0 {
		t.Fatal("the background sweeper never dropped an idle key")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("a second Close = %v", err)
	}
	if _, err := a.Inc(ctx, "k", ten, 1); !errors.Is(err, trypema.ErrClosed) {
		t.Fatalf("Inc after Close = %v", err)
	}
	if err := a.Clear(ctx); !errors.Is(err, trypema.ErrClosed) {
		t.Fatalf("Clear after Close = %v", err)
	}
}

func TestConstructorValidation(t *testing.T) {
	if _, err := NewAbsolute(trypema.WithWindow(0)); !errors.Is(err, trypema.ErrInvalidWindow) {
		t.Fatalf("NewAbsolute(window 0) = %v", err)
	}
	if _, err := NewSuppressed(trypema.WithHardLimitFactor(0.5)); !errors.Is(err, trypema.ErrInvalidFactor) {
		t.Fatalf("NewSuppressed(hf 0.5) = %v", err)
	}
}
