package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/localcache"
)

// A call in the demo's traffic: who asks, when (ms from the start), how much.
type demoCall struct {
	at     int64
	client string
	n      int64
}

// steady returns calls every gap ms in [from, to).
func steady(client string, from, to, gap int64) []demoCall {
	var calls []demoCall
	for t := from; t < to; t += gap {
		calls = append(calls, demoCall{t, client, 1})
	}
	return calls
}

func sortCalls(calls []demoCall) []demoCall {
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].at < calls[j].at })
	return calls
}

// demo plays a small traffic pattern through both local strategies on a
// simulated clock, so the output is the same on every machine and takes no
// time, and prints every decision.
func demo(w io.Writer) error {
	ctx := context.Background()
	const start = 1_000_000

	// Absolute: 5 per second over a 2 s window is a capacity of 10.
	clk := trypema.NewManualClock(start)
	abs, err := localcache.NewAbsolute(trypema.WithWindow(2*time.Second), trypema.WithClock(clk))
	if err != nil {
		return err
	}
	defer abs.Close()
	rate := trypema.MustPerSecond(5)
	fmt.Fprintln(w, "== absolute: 5/s over a 2 s window (capacity 10 per key) ==")
	fmt.Fprintln(w, "   alice calls every 400 ms (2.5/s); mallory bursts 8 at once, then calls every 100 ms")
	calls := sortCalls(append(append(steady("alice", 0, 3000, 400),
		demoCall{0, "mallory", 8}), steady("mallory", 500, 3000, 100)...))
	counts := map[string][2]int{}
	for _, c := range calls {
		clk.Set(start + c.at)
		d, err := abs.Inc(ctx, c.client, rate, c.n)
		if err != nil {
			fmt.Fprintf(w, "t=%5dms  %-8s n=%-2d error: %v\n", c.at, c.client, c.n, err)
			continue
		}
		k := counts[c.client]
		if d.Admitted {
			k[0]++
		} else {
			k[1]++
		}
		counts[c.client] = k
		switch d.Outcome {
		case trypema.Allowed:
			fmt.Fprintf(w, "t=%5dms  %-8s n=%-2d allowed   remaining %d of %d\n", c.at, c.client, c.n, d.Remaining, d.Limit)
		default:
			fmt.Fprintf(w, "t=%5dms  %-8s n=%-2d rejected  retry after %v (then %d free)\n", c.at, c.client, c.n, d.RetryAfter, d.RemainingAfterWaiting)
		}
	}
	for _, who := range []string{"alice", "mallory"} {
		fmt.Fprintf(w, "   %s: %d admitted, %d rejected\n", who, counts[who][0], counts[who][1])
	}

	// Suppressed: 10 per second over 1 s with a 1.5 hard-limit factor, a
	// client offering three times the rate for 3 s.
	clk = trypema.NewManualClock(start)
	rng := rand.New(rand.NewPCG(2026, 12))
	sup, err := localcache.NewSuppressed(trypema.WithWindow(time.Second), trypema.WithHardLimitFactor(1.5),
		trypema.WithClock(clk), trypema.WithRandom(rng.Float64))
	if err != nil {
		return err
	}
	defer sup.Close()
	rate = trypema.MustPerSecond(10)
	fmt.Fprintln(w, "\n== suppressed: 10/s over a 1 s window, hard limit factor 1.5 (soft cap 10, hard cap 15) ==")
	fmt.Fprintln(w, "   bob offers 30/s for 3 s; the admitted rate settles near 10/s")
	perSecond := make([]int, 3)
	for _, c := range steady("bob", 0, 3000, 33) {
		clk.Set(start + c.at)
		d, err := sup.Inc(ctx, c.client, rate, c.n)
		if err != nil {
			return err
		}
		verdict := "denied  "
		if d.Admitted {
			verdict = "admitted"
			perSecond[c.at/1000]++
		}
		fmt.Fprintf(w, "t=%5dms  %-4s %-10s %s  factor %.2f\n", c.at, c.client, d.Outcome, verdict, d.SuppressionFactor)
	}
	fmt.Fprintf(w, "   admitted per second: %v (target 10; the first second also fills the window)\n", perSecond)
	return nil
}
