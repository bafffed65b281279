package localcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

// TestExactAdmissionUnderConcurrency: 1,000 goroutines each asking for one
// unit of a fresh key whose capacity is 100 admit exactly 100, every time.
func TestExactAdmissionUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	rate := trypema.MustPerSecond(10) // 100 over the default 10 s window
	for _, strategy := range []string{"absolute", "suppressed"} {
		t.Run(strategy, func(t *testing.T) {
			var l interface {
				Inc(context.Context, string, trypema.Rate, int64) (trypema.Decision, error)
				Close() error
			}
			if strategy == "absolute" {
				l = mustAbsolute(t)
			} else {
				l = mustSuppressed(t) // hf = 1: H = S = 100
			}
			defer l.Close()
			for rep := 0; rep < 20; rep++ {
				key := "fresh_" + string(rune('a'+rep))
				var admitted, errs atomic.Int64
				start := make(chan struct{})
				var wg sync.WaitGroup
				for g := 0; g < 1000; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						d, err := l.Inc(ctx, key, rate, 1)
						if err != nil {
							errs.Add(1)
						}
						if d.Admitted {
							admitted.Add(1)
						}
					}()
				}
				close(start)
				wg.Wait()
				if errs.Load() != 0 || admitted.Load() != 100 {
					t.Fatalf("repetition %d: admitted %d with %d errors, want exactly 100", rep, admitted.Load(), errs.Load())
				}
			}
		})
	}
}

// TestConcurrentMixedOperations runs every operation at once on a few keys
// under -race and checks the invariants that must survive: no key ever
// holds more than its capacity, and no operation fails.
func TestConcurrentMixedOperations(t *testing.T) {
	ctx := context.Background()
	l := mustAbsolute(t, trypema.WithWindow(50*time.Millisecond), trypema.WithBucketSize(5*time.Millisecond),
		trypema.WithSweepInterval(time.Millisecond))
	defer l.Close()
	rate := trypema.MustPerSecond(1000) // 50 per window
	keys := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				key := keys[(g+i)%len(keys)]
				var err error
				switch i % 10 {
				case 0:
					_, _, err = l.Delete(ctx, key)
				case 1:
					_, err = l.SetIf(ctx, key, rate, trypema.Gt, 10, trypema.PreserveNewest)
				case 2:
					var s trypema.Snapshot
					if s, err = l.Get(ctx, key); err == nil && s.Total > s.Limit {
						t.Errorf("key %s holds %d, above its limit %d", key, s.Total, s.Limit)
					}
				case 3:
					_, err = l.IsAllowed(ctx, key)
				case 4:
					_, _, err = l.SetRateLimit(ctx, key, rate)
				case 5:
					if i%1000 == 5 {
						err = l.Clear(ctx)
					}
				default:
					_, err = l.Inc(ctx, key, rate, 1)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
