package localcache

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

type call struct{ at, n int64 }

// TestStrictInvariantAndExactRetryAfter plays random call schedules on a
// fake clock. After every admission it checks SPEC §3 by brute force: for
// every instant t, admitted units of calls in (t − W, t] never exceed C.
// At every rejection it replays the history into a fresh limiter and checks
// that RetryAfter is exact: 1 ms earlier the same call is rejected, at
// RetryAfter it is admitted with the promised room.
func TestStrictInvariantAndExactRetryAfter(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(42, 7))
	schedules := 300
	if testing.Short() {
		schedules = 50
	}
	var rejections, checked int
	for sched := 0; sched < schedules; sched++ {
		windowMs := 1 + rng.Int64N(3000)
		bucketMs := 1 + rng.Int64N(windowMs)
		capacity := 1 + rng.Int64N(40)
		// A rate whose capacity over the window is exactly capacity.
		rate := trypema.Rate(float64(capacity) * 1000 / float64(windowMs))
		opts := []trypema.Option{trypema.WithWindow(time.Duration(windowMs) * time.Millisecond),
			trypema.WithBucketSize(time.Duration(bucketMs) * time.Millisecond)}
		clk := trypema.NewManualClock(1_700_000_000_000)
		l := mustAbsolute(t, append(opts, trypema.WithClock(clk))...)

		var history []call // every call made, in order
		var admitted []call
		now := clk.NowMs()
		for i := 0; i < 200; i++ {
			switch rng.IntN(4) {
			case 0:
				now += rng.Int64N(windowMs/4 + 1)
			case 1:
				now += rng.Int64N(bucketMs + 1)
			default: // bursts at the same instant or 1 ms apart
				now += rng.Int64N(2)
			}
			clk.Set(now)
			n := 1 + rng.Int64N(min(capacity, 1+capacity/3))
			d, err := l.Inc(ctx, "k", rate, n)
			if err != nil {
				t.Fatalf("schedule %d: %v", sched, err)
			}
			history = append(history, call{now, n})
			if d.Limit != capacity {
				t.Fatalf("schedule %d: limit %d, want %d", sched, d.Limit, capacity)
			}
			if d.Admitted {
				admitted = append(admitted, call{now, n})
				if got := windowSum(admitted, now, windowMs); got > capacity {
					t.Fatalf("schedule %d (W=%d B=%d C=%d): %d units admitted in (%d, %d]",
						sched, windowMs, bucketMs, capacity, got, now-windowMs, now)
				}
				continue
			}
			rejections++
			if d.Outcome != trypema.Rejected || d.RetryAfter <= 0 || d.RemainingAfterWaiting < n {
				t.Fatalf("schedule %d: bad rejection %+v for n=%d", sched, d, n)
			}
			if rng.IntN(3) != 0 {
				continue
			}
			checked++
			retry := d.RetryAfter.Milliseconds()
			replayClk := trypema.NewManualClock(0)
			replay := mustAbsolute(t, append(opts, trypema.WithClock(replayClk))...)
			for _, c := range history[:len(history)-1] {
				replayClk.Set(c.at)
				replay.Inc(ctx, "k", rate, c.n)
			}
			replayClk.Set(now + retry - 1)
			early, err := replay.Inc(ctx, "k", rate, n)
			if err != nil || early.Admitted {
				t.Fatalf("schedule %d: retry 1 ms before RetryAfter=%dms admitted (%+v, %v)", sched, retry, early, err)
			}
			replayClk.Set(now + retry)
			onTime, err := replay.Inc(ctx, "k", rate, n)
			if err != nil || !onTime.Admitted {
				t.Fatalf("schedule %d: retry at RetryAfter=%dms rejected (%+v, %v)", sched, retry, onTime, err)
			}
			if onTime.Remaining != d.RemainingAfterWaiting-n {
				t.Fatalf("schedule %d: remaining after waiting %d, promised %d", sched, onTime.Remaining+n, d.RemainingAfterWaiting)
			}
			replay.Close()
		}
		l.Close()
	}
	if rejections == 0 || checked == 0 {
		t.Fatalf("the schedules produced no rejections (%d) or checks (%d): the test is not testing", rejections, checked)
	}
	t.Logf("%d schedules, %d rejections, %d RetryAfter values replayed", schedules, rejections, checked)
}

// windowSum returns the units of calls in (now − w, now].
func windowSum(calls []call, now, w int64) int64 {
	var sum int64
	for _, c := range calls {
		if c.at > now-w && c.at <= now {
			sum += c.n
		}
	}
	return sum
}

func mustAbsolute(t testing.TB, opts ...trypema.Option) *Absolute {
	t.Helper()
	l, err := NewAbsolute(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustSuppressed(t testing.TB, opts ...trypema.Option) *Suppressed {
	t.Helper()
	l, err := NewSuppressed(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSuppressedHardCapInvariant: on random schedules, accepted units of
// calls in (t − W, t] never exceed H, and every factor is in [0, 1].
func TestSuppressedHardCapInvariant(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	for sched := 0; sched < 200; sched++ {
		windowMs := 1000 + rng.Int64N(4000)
		bucketMs := 1 + rng.Int64N(windowMs/2)
		hf := 1 + rng.Float64()
		rate := trypema.Rate(1 + rng.Float64()*20)
		clk := trypema.NewManualClock(5_000)
		l := mustSuppressed(t, trypema.WithWindow(time.Duration(windowMs)*time.Millisecond),
			trypema.WithBucketSize(time.Duration(bucketMs)*time.Millisecond), trypema.WithHardLimitFactor(hf),
			trypema.WithClock(clk), trypema.WithRandom(rng.Float64))
		_, hard, err := trypema.Capacity(rate, windowMs, hf)
		if err != nil {
			t.Fatal(err)
		}
		var accepted []call
		now := clk.NowMs()
		for i := 0; i < 300; i++ {
			now += rng.Int64N(windowMs / 20)
			clk.Set(now)
			n := 1 + rng.Int64N(min(hard, 3))
			d, err := l.Inc(ctx, "k", rate, n)
			if err != nil {
				t.Fatal(err)
			}
			if f := d.SuppressionFactor; !(f >= 0 && f <= 1) {
				t.Fatalf("factor %v outside [0, 1]", f)
			}
			if d.Outcome == trypema.Rejected {
				t.Fatal("the suppressed strategy never rejects")
			}
			if d.Admitted {
				accepted = append(accepted, call{now, n})
				if got := windowSum(accepted, now, windowMs); got > hard {
					t.Fatalf("schedule %d: %d accepted units in a window, hard cap %d", sched, got, hard)
				}
			}
			snap, _ := l.Get(ctx, "k")
			if snap.Accepted() != windowSum(accepted, now, windowMs) && bucketMs == 1 {
				t.Fatalf("snapshot accepted %d, brute force %d", snap.Accepted(), windowSum(accepted, now, windowMs))
			}
		}
		l.Close()
	}
}
