package hybrid_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/hybrid"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/localcache"
)

// BenchmarkInc compares hybrid Inc with localcache Inc on one hot key, in
// the same run: the hybrid decides from its reservation and syncs in the
// background.
func BenchmarkInc(b *testing.B) {
	srv := redistest.Start(b)
	rate := trypema.MustPerSecond(1e12) // the admit path
	opts := []trypema.Option{trypema.WithWindow(time.Second)}
	local, err := localcache.NewAbsolute(opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer local.Close()
	hyb, err := hybrid.NewAbsolute(srv.Pool(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer hyb.Close()
	limiters := []struct {
		name string
		l    trypema.Limiter
	}{{"local", local}, {"hybrid", hyb}}
	for _, x := range limiters {
		b.Run(x.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.l.Inc(ctx, "hot", rate, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(x.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := x.l.Inc(ctx, "hot", rate, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSaturatedKeyRedisCommands hammers one key far above its rate
// from 16 goroutines and reports the Redis commands per second it costs:
// about one sync per sync interval, however hard the key is hit.
func BenchmarkSaturatedKeyRedisCommands(b *testing.B) {
	srv := redistest.Start(b)
	const interval = 10 * time.Millisecond
	hyb, err := hybrid.NewAbsolute(srv.Pool(), []trypema.Option{trypema.WithWindow(time.Second), trypema.WithSyncInterval(interval)})
	if err != nil {
		b.Fatal(err)
	}
	defer hyb.Close()
	rate := trypema.MustPerSecond(1000)
	srv.Do(b, "CONFIG", "RESETSTAT")
	start := time.Now()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := hyb.Inc(ctx, "saturated", rate, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start).Seconds()
	calls := evalshaCalls(b, srv)
	b.ReportMetric(float64(calls)/elapsed, "redis-cmds/s")
	b.ReportMetric(1000/float64(interval.Milliseconds()), "target-cmds/s")
}

func evalshaCalls(b *testing.B, srv *redistest.Server) int {
	info, _ := redis.String(srv.Do(b, "INFO", "commandstats"), nil)
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") {
			var calls int
			fmt.Sscanf(strings.TrimPrefix(line, "cmdstat_evalsha:"), "calls=%d", &calls)
			return calls
		}
	}
	return 0
}
