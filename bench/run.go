package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Warm brings lim to the steady state the benchmarks measure: every key
// of ks exists, a library whose state grows with time (WarmFor) has been
// driven along ks.Seq for that long, and under a small limit every key has
// been asked for twice its allowance, so that it is saturated. workers
// goroutines share the work.
func Warm(ctx context.Context, lim Limiter, lib Lib, l Limit, ks KeySet, workers int) error {
	if err := Each(ctx, lim, ks.Distinct, workers); err != nil {
		return err
	}
	var d time.Duration
	if lib.WarmFor != nil {
		d = lib.WarmFor(l)
	}
	var minCalls int64
	if total := 2 * l.Count * int64(len(ks.Distinct)); total <= 1e6 {
		minCalls = total
	}
	return Walk(ctx, lim, ks.Seq, workers, d, minCalls)
}

// Each calls lim.Allow once for every key, from workers goroutines.
func Each(ctx context.Context, lim Limiter, keys []string, workers int) error {
	var next atomic.Int64
	return spread(workers, func() error {
		for {
			i := next.Add(1) - 1
			if i >= int64(len(keys)) {
				return nil
			}
			if _, err := lim.Allow(ctx, keys[i]); err != nil {
				return err
			}
		}
	})
}

// Walk calls lim.Allow along seq from workers goroutines, each from its
// own offset, until at least d has passed and minCalls calls were made.
func Walk(ctx context.Context, lim Limiter, seq []string, workers int, d time.Duration, minCalls int64) error {
	deadline := time.Now().Add(d)
	var calls, start atomic.Int64
	mask := len(seq) - 1
	return spread(workers, func() error {
		i := int(start.Add(seqStride))
		for n := 0; ; n++ {
			if n%64 == 0 && calls.Load() >= minCalls && !time.Now().Before(deadline) {
				return nil
			}
			if _, err := lim.Allow(ctx, seq[i&mask]); err != nil {
				return err
			}
			i++
			calls.Add(1)
		}
	})
}

// seqStride separates the starting points of concurrent walkers on a key
// sequence, so that they do not call the same keys in lockstep. (On the
// one-key sequence every offset is the hot key, as it should be.)
const seqStride = 7919 * 13

// SeqStart returns the starting offset of the g-th concurrent walker.
func SeqStart(g int64) int { return int(g * seqStride) }

func spread(workers int, f func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
