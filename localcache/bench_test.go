package localcache

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

// A rate high enough that benchmarks measure the admit path, not rejection.
var benchRate = trypema.MustPerSecond(1e12)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user_" + strconv.Itoa(i)
	}
	return keys
}

type incer interface {
	Inc(context.Context, string, trypema.Rate, int64) (trypema.Decision, error)
	Close() error
}

// Benchmarks use a short window so that warming every key up to its steady
// number of buckets (window / bucket = 10) takes a fraction of a second.
const (
	benchWindow = 200 * time.Millisecond
	benchBucket = 20 * time.Millisecond
)

func newBenchLimiters(b *testing.B) map[string]incer {
	opts := []trypema.Option{trypema.WithWindow(benchWindow), trypema.WithBucketSize(benchBucket)}
	abs, err := NewAbsolute(opts...)
	if err != nil {
		b.Fatal(err)
	}
	sup, err := NewSuppressed(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { abs.Close(); sup.Close() })
	return map[string]incer{"absolute": abs, "suppressed": sup}
}

// warm calls Inc on every key for a little more than a window, so that the
// measured loop sees keys in their steady state (rings fully grown).
func warm(b *testing.B, l incer, keys []string) {
	ctx := context.Background()
	for deadline := time.Now().Add(benchWindow + benchWindow/4); time.Now().Before(deadline); {
		for _, k := range keys {
			if _, err := l.Inc(ctx, k, benchRate, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkInc(b *testing.B) {
	ctx := context.Background()
	for _, strategy := range []string{"absolute", "suppressed"} {
		for _, nkeys := range []int{1, 100_000} {
			keys := benchKeys(nkeys)
			name := strategy + "/keys=" + strconv.Itoa(nkeys)
			b.Run(name+"/serial", func(b *testing.B) {
				l := newBenchLimiters(b)[strategy]
				warm(b, l, keys)
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					if _, err := l.Inc(ctx, keys[i], benchRate, 1); err != nil {
						b.Fatal(err)
					}
					if i++; i == len(keys) {
						i = 0
					}
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				l := newBenchLimiters(b)[strategy]
				warm(b, l, keys)
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(7919)) % len(keys)
					for pb.Next() {
						if _, err := l.Inc(ctx, keys[i], benchRate, 1); err != nil {
							b.Error(err)
							return
						}
						if i++; i == len(keys) {
							i = 0
						}
					}
				})
			})
		}
	}
}
