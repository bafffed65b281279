package localcache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

// TestSuppressedHoldsTargetRate offers a steady k× overload for ten windows
// on a fake clock and checks SPEC §4.2's intent: after the first window the
// admitted rate is within ±5 % of the target, accepted usage never exceeds
// the hard cap in any window, and the factor is always a number in [0, 1].
func TestSuppressedHoldsTargetRate(t *testing.T) {
	const (
		rate     = 1000.0 // units per second; S = 10,000 keeps binomial noise near 1 %
		windowMs = 10_000
		windows  = 10
		hf       = 1.5
	)
	for _, tc := range []struct {
		k    float64
		seed uint64
	}{{1.5, 1}, {2, 1}, {2, 2}, {2, 3}, {5, 1}, {5, 2}, {5, 3}, {10, 1}} {
		k := tc.k
		t.Run(fmt.Sprintf("x%g/seed%d", k, tc.seed), func(t *testing.T) {
			ctx := context.Background()
			clk := trypema.NewManualClock(1_000_000)
			rng := rand.New(rand.NewPCG(tc.seed, 0x7279))
			l, err := NewSuppressed(trypema.WithWindow(windowMs*time.Millisecond), trypema.WithHardLimitFactor(hf),
				trypema.WithClock(clk), trypema.WithRandom(rng.Float64))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			r := trypema.MustPerSecond(rate)
			_, hard, _ := trypema.Capacity(r, windowMs, hf)

			start := clk.NowMs()
			gapMs := 1000 / (rate * k) // offered: one unit every gapMs
			perWindow := make([]int64, windows)
			perSecond := make([]int64, windows*windowMs/1000)
			var admitted []int64 // times of admitted units
			for i := 0; ; i++ {
				now := start + int64(float64(i)*gapMs)
				w := (now - start) / windowMs
				if w >= windows {
					break
				}
				clk.Set(now)
				d, err := l.Inc(ctx, "k", r, 1)
				if err != nil {
					t.Fatal(err)
				}
				if f := d.SuppressionFactor; math.IsNaN(f) || f < 0 || f > 1 {
					t.Fatalf("t=%d: factor %v outside [0, 1]", now-start, f)
				}
				if i%97 == 0 {
					f, _ := l.SuppressionFactor(ctx, "k")
					if math.IsNaN(f) || f < 0 || f > 1 {
						t.Fatalf("t=%d: SuppressionFactor %v outside [0, 1]", now-start, f)
					}
				}
				if !d.Admitted {
					continue
				}
				perWindow[w]++
				perSecond[(now-start)/1000]++
				admitted = append(admitted, now)
				// Accepted units of calls in (now−W, now] stay within H.
				lo := 0
				for admitted[lo] <= now-windowMs {
					lo++
				}
				admitted = admitted[lo:]
				if int64(len(admitted)) > hard {
					t.Fatalf("t=%d: %d accepted units in the window, above the hard cap %d", now-start, len(admitted), hard)
				}
			}
			target := rate * windowMs / 1000
			for w := 1; w < windows; w++ {
				if dev := float64(perWindow[w])/target - 1; math.Abs(dev) > 0.05 {
					t.Errorf("window %d: admitted %d, target %.0f (%+.1f%%)", w, perWindow[w], target, 100*dev)
				}
			}
			// Smooth: no on/off saw-tooth inside a window either.
			for sec := windowMs / 1000; sec < len(perSecond); sec++ {
				if dev := float64(perSecond[sec])/rate - 1; math.Abs(dev) > 0.15 {
					t.Errorf("second %d: admitted %d, target %.0f (%+.1f%%)", sec, perSecond[sec], rate, 100*dev)
				}
			}
			t.Logf("offered %.1fx: admitted per window %v (target %.0f, hard cap %d)", k, perWindow, target, hard)
		})
	}
}
