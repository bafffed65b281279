package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Benchmark names are key=value paths so that benchstat can pivot on any
// of them (benchstat -col /lib):
//
//	BenchmarkLocal/keys=hot/limit=open/lib=x-time-rate/run=parallel
//	BenchmarkRedis/keys=uniform1k/limit=open/lib=redis_rate/callers=16
//
// keys: hot (one key), uniform100k, zipf100k (s = 1.1), uniform1k.
// limit: open (every call admitted) or saturated (100/s; nearly every call
// rejected). Each lib= row of a scenario gets a freshly built and warmed
// limiter, and a flushed Redis, before its runs.

var ctx = context.Background()

// zipfS is the exponent of the Zipf key distribution.
const zipfS = 1.1

var localKeySets = sync.OnceValue(func() []KeySet {
	return []KeySet{HotKey(), Uniform(100_000, 1), Zipf(100_000, zipfS, 1)}
})

var redisKeySets = sync.OnceValue(func() []KeySet {
	return []KeySet{HotKey(), Uniform(1000, 1)}
})

type scenario struct {
	keys  KeySet
	limit Limit
}

func (s scenario) name() string { return "keys=" + s.keys.Name + "/limit=" + s.limit.Name }

func BenchmarkLocal(b *testing.B) {
	sets := localKeySets()
	scenarios := []scenario{
		{sets[0], OpenLocal}, {sets[1], OpenLocal}, {sets[2], OpenLocal},
		{sets[0], Saturated},
	}
	for _, sc := range scenarios {
		for _, lib := range LocalLibs {
			b.Run(sc.name()+"/lib="+lib.Name, func(b *testing.B) {
				lim := warmed(b, nil, lib, sc, runtime.GOMAXPROCS(0))
				b.Run("run=serial", func(b *testing.B) { serial(b, lim, sc.keys.Seq) })
				b.Run("run=parallel", func(b *testing.B) { parallel(b, lim, sc.keys.Seq) })
			})
		}
	}
}

// redisCallers are the numbers of concurrent callers of the Redis rows.
var redisCallers = []int{1, 16}

func BenchmarkRedis(b *testing.B) {
	env := redisEnv(b)
	sets := redisKeySets()
	scenarios := []scenario{{sets[0], OpenRedis}, {sets[1], OpenRedis}, {sets[0], Saturated}}
	for _, sc := range scenarios {
		for _, lib := range RedisLibs {
			b.Run(sc.name()+"/lib="+lib.Name, func(b *testing.B) {
				if err := env.Flush(); err != nil {
					b.Fatal(err)
				}
				lim := warmed(b, env, lib.Lib, sc, 16)
				for _, callers := range redisCallers {
					b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
						if err := env.ResetStats(); err != nil {
							b.Fatal(err)
						}
						if callers == 1 {
							serial(b, lim, sc.keys.Seq)
						} else {
							concurrent(b, lim, sc.keys.Seq, callers)
						}
						stats, err := env.CommandStats()
						if err != nil {
							b.Fatal(err)
						}
						usec, _ := ScriptUsec(stats)
						b.ReportMetric(float64(usec)/float64(b.N), "server-µs/op")
					})
				}
			})
		}
	}
}

// warmed builds lib's limiter for sc, warms it and closes it after the
// benchmark.
func warmed(b *testing.B, env *Env, lib Lib, sc scenario, workers int) Limiter {
	lim, err := lib.New(env, sc.limit)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lim.Close() })
	if err := Warm(ctx, lim, lib, sc.limit, sc.keys, workers); err != nil {
		b.Fatal(err)
	}
	return lim
}

// serial makes one call after another from one goroutine.
func serial(b *testing.B, lim Limiter, seq []string) {
	b.ReportAllocs()
	mask, i, admitted := len(seq)-1, 0, 0
	for b.Loop() {
		ok, err := lim.Allow(ctx, seq[i&mask])
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			admitted++
		}
		i++
	}
	b.ReportMetric(float64(admitted)/float64(b.N), "admitted/op")
}

// parallel makes calls from GOMAXPROCS goroutines with b.RunParallel.
func parallel(b *testing.B, lim Limiter, seq []string) {
	var walkers, admitted atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		mask, i, n := len(seq)-1, SeqStart(walkers.Add(1)), int64(0)
		for pb.Next() {
			ok, err := lim.Allow(ctx, seq[i&mask])
			if err != nil {
				b.Error(err)
				return
			}
			if ok {
				n++
			}
			i++
		}
		admitted.Add(n)
	})
	b.ReportMetric(float64(admitted.Load())/float64(b.N), "admitted/op")
}

// concurrent makes b.N calls from exactly callers goroutines, whatever
// GOMAXPROCS is: a fixed number of clients waiting on Redis.
func concurrent(b *testing.B, lim Limiter, seq []string, callers int) {
	var next, admitted atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mask, i, n := len(seq)-1, SeqStart(int64(g+1)), int64(0)
			for next.Add(1) <= int64(b.N) {
				ok, err := lim.Allow(ctx, seq[i&mask])
				if err != nil {
					b.Error(err)
					return
				}
				if ok {
					n++
				}
				i++
			}
			admitted.Add(n)
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(admitted.Load())/float64(b.N), "admitted/op")
}

// The Redis of this test binary: REDIS_URL's, or one started on first use
// and stopped by TestMain.
var redis struct {
	once sync.Once
	srv  *Server
	env  *Env
	err  error
}

func redisEnv(tb testing.TB) *Env {
	tb.Helper()
	redis.once.Do(func() {
		if redis.srv, redis.err = StartServer(); redis.err == nil {
			redis.env, redis.err = NewEnv(redis.srv.URL)
		}
	})
	if redis.err != nil {
		tb.Fatal(redis.err)
	}
	return redis.env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if redis.env != nil {
		redis.env.Close()
	}
	if redis.srv != nil {
		redis.srv.Close()
	}
	os.Exit(code)
}
