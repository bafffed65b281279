package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/localcache"
	"github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"
)

// Limiter is the one call every benchmarked library is reduced to.
type Limiter interface {
	// Allow asks for one unit of key now and reports whether it was granted.
	Allow(ctx context.Context, key string) (bool, error)
	Close() error
}

// Limit is the same limit expressed for every library: Count units per
// Window for each key.
type Limit struct {
	Name   string
	Count  int64
	Window time.Duration
	// Buckets is Trypema-Go's window / bucket size (its time resolution);
	// zero means BucketsPerWindow. The other libraries have no such knob.
	Buckets int
	// Clock, when set, is Trypema-Go's time source (trypema.WithClock),
	// to step its buckets exactly in measurements; the other libraries
	// always use real time.
	Clock trypema.Clock
}

// PerSecond returns the limit as a rate in units per second.
func (l Limit) PerSecond() float64 { return float64(l.Count) / l.Window.Seconds() }

// The limits the benchmarks use, all over a one-second window.
var (
	// OpenLocal is far above what one process can ask for (~10^7 calls/s),
	// so every in-process call takes the admit path.
	OpenLocal = Limit{Name: "open", Count: 1e9, Window: time.Second}
	// OpenRedis is far above what one Redis serves (~10^5 calls/s). It is
	// lower than OpenLocal because redis_rate computes in seconds since
	// 2017 as doubles: at 10^9/s its per-call increment (1 ns) is below
	// the precision of "now" and it would stop writing its key at all.
	OpenRedis = Limit{Name: "open", Count: 1e6, Window: time.Second}
	// Saturated is 100 per second: after warm-up a hot key is over its
	// limit and nearly every call takes the reject path.
	Saturated = Limit{Name: "saturated", Count: 100, Window: time.Second}
)

// BucketsPerWindow is Trypema-Go's window / bucket size in the benchmarks:
// 1 s / 100 ms, the library's default bucket size, so a key holds up to 10
// buckets (the default 10 s window holds up to 100). Admitting touches only
// the ends of the ring either way; see BENCHMARKS.md for what does grow.
const BucketsPerWindow = 10

// Lib is one library (or one strategy of one) under test.
type Lib struct {
	// Name is the lib= value in benchmark names.
	Name string
	// Ours marks Trypema-Go's own rows; the others are peers.
	Ours bool
	// Algorithm says in a few words what the library computes.
	Algorithm string
	// WarmFor is how long calls must run before a key is in its steady
	// state; zero means one call per key is enough (O(1) state).
	WarmFor func(Limit) time.Duration
	// New builds a fresh limiter for l. env gives Redis-backed libraries
	// their server; in-process ones ignore it.
	New func(env *Env, l Limit) (Limiter, error)
}

// trypemaWarm is a window and a quarter: every key seen often enough has
// grown and rotated its ring of buckets.
func trypemaWarm(l Limit) time.Duration { return l.Window + l.Window/4 }

// TrypemaOptions are the options every Trypema-Go limiter is built with.
func TrypemaOptions(l Limit) []trypema.Option {
	opts := []trypema.Option{
		trypema.WithWindow(l.Window),
		trypema.WithBucketSize(l.Window / time.Duration(cmp.Or(l.Buckets, BucketsPerWindow))),
		trypema.WithPrefix("bench"),
	}
	if l.Clock != nil {
		opts = append(opts, trypema.WithClock(l.Clock))
	}
	return opts
}

// LocalLibs are the in-process libraries, Trypema-Go's first.
var LocalLibs = []Lib{
	{
		Name: "trypema-absolute", Ours: true,
		Algorithm: "exact sliding window over time buckets (localcache)",
		WarmFor:   trypemaWarm,
		New: func(_ *Env, l Limit) (Limiter, error) {
			lim, err := localcache.NewAbsolute(TrypemaOptions(l)...)
			return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
		},
	},
	{
		Name: "trypema-suppressed", Ours: true,
		Algorithm: "sliding window with probabilistic suppression (localcache)",
		WarmFor:   trypemaWarm,
		New: func(_ *Env, l Limit) (Limiter, error) {
			lim, err := localcache.NewSuppressed(TrypemaOptions(l)...)
			return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
		},
	},
	{
		Name:      "x-time-rate",
		Algorithm: "token bucket, one rate.Limiter per key in a sync.Map",
		New: func(_ *Env, l Limit) (Limiter, error) {
			return &xrateLimiter{limit: rate.Limit(l.PerSecond()), burst: int(l.Count)}, nil
		},
	},
	{
		Name:      "sethvargo",
		Algorithm: "token bucket refilled once per interval (memorystore)",
		New: func(_ *Env, l Limit) (Limiter, error) {
			tokens, interval := sethvargoConfig(l)
			st, err := memorystore.New(&memorystore.Config{Tokens: tokens, Interval: interval})
			if err != nil {
				return nil, err
			}
			return sethvargoLimiter{st}, nil
		},
	},
	{
		Name:      "ulule",
		Algorithm: "fixed window counter (memory store)",
		New: func(_ *Env, l Limit) (Limiter, error) {
			st := ulmemory.NewStoreWithOptions(limiter.StoreOptions{Prefix: "ulule", CleanUpInterval: limiter.DefaultCleanUpInterval})
			return ululeLimiter{limiter.New(st, limiter.Rate{Period: l.Window, Limit: l.Count})}, nil
		},
	},
	{
		Name:      "throttled",
		Algorithm: "GCRA (memstore, unbounded map)",
		New: func(_ *Env, l Limit) (Limiter, error) {
			// maxKeys 0 is memstore's fastest mode: a plain map without
			// the LRU's lock on every read.
			st, err := memstore.NewCtx(0)
			if err != nil {
				return nil, err
			}
			rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{
				MaxRate:  throttled.PerDuration(int(l.Count), l.Window),
				MaxBurst: int(l.Count) - 1, // throttled admits MaxBurst+1 at once
			})
			if err != nil {
				return nil, err
			}
			// Its default of 10 compare-and-swap attempts fails calls
			// ("Failed to store updated rate limit data") when two
			// goroutines hammer one key, and so, now and then, does
			// 1,000: the goroutine that just won keeps winning. Retrying
			// until the swap succeeds measures that cost instead of
			// failing the benchmark; this is throttled's own knob.
			rl.SetMaxCASAttemptsLimit(throttledCASAttempts)
			return throttledLimiter{rl}, nil
		},
	},
}

// trypemaLimiter adapts any of Trypema-Go's six limiters.
type trypemaLimiter struct {
	l    trypema.Limiter
	rate trypema.Rate
}

func (t trypemaLimiter) Allow(ctx context.Context, key string) (bool, error) {
	d, err := t.l.Inc(ctx, key, t.rate, 1)
	return d.Admitted, err
}

func (t trypemaLimiter) Close() error {
	if t.l == nil {
		return nil
	}
	return t.l.Close()
}

// xrateLimiter is what golang.org/x/time/rate's docs leave to the user:
// a map from key to *rate.Limiter. sync.Map suits it (keys are written
// once, read many times, from many goroutines).
type xrateLimiter struct {
	limit rate.Limit
	burst int
	m     sync.Map // string → *rate.Limiter
}

func (x *xrateLimiter) Allow(_ context.Context, key string) (bool, error) {
	v, ok := x.m.Load(key)
	if !ok {
		v, _ = x.m.LoadOrStore(key, rate.NewLimiter(x.limit, x.burst))
	}
	return v.(*rate.Limiter).Allow(), nil
}

func (x *xrateLimiter) Close() error { return nil }

// sethvargoConfig expresses l for memorystore. Its refill at each new
// interval is ticks × interval_ns / tokens tokens (capped at tokens), a
// full refill only while tokens ≤ √interval_ns (31,622 per second). For a
// larger limit, such as OpenLocal's 10^9 per second, the interval is
// stretched to 10^6 windows with as many more tokens: the same rate, and a
// run that stays inside the first interval, so that every call takes the
// admit path as it does in the other libraries.
func sethvargoConfig(l Limit) (tokens uint64, interval time.Duration) {
	tokens, interval = uint64(l.Count), l.Window
	if float64(tokens)*float64(tokens) > float64(interval.Nanoseconds()) {
		const stretch = 1_000_000
		tokens, interval = tokens*stretch, interval*stretch
	}
	return tokens, interval
}

type sethvargoLimiter struct {
	st interface {
		Take(context.Context, string) (uint64, uint64, uint64, bool, error)
		Close(context.Context) error
	}
}

func (s sethvargoLimiter) Allow(ctx context.Context, key string) (bool, error) {
	_, _, _, ok, err := s.st.Take(ctx, key)
	return ok, err
}

func (s sethvargoLimiter) Close() error { return s.st.Close(context.Background()) }

type ululeLimiter struct{ l *limiter.Limiter }

func (u ululeLimiter) Allow(ctx context.Context, key string) (bool, error) {
	c, err := u.l.Get(ctx, key)
	return !c.Reached, err
}

// Close does nothing: ulule's stores have no Close (the memory store's
// cleaner stops when the store is garbage-collected).
func (u ululeLimiter) Close() error { return nil }

// throttledCASAttempts replaces throttled's default of 10 retries:
// practically unlimited.
const throttledCASAttempts = math.MaxInt32

type throttledLimiter struct{ rl *throttled.GCRARateLimiterCtx }

func (t throttledLimiter) Allow(ctx context.Context, key string) (bool, error) {
	limited, _, err := t.rl.RateLimitCtx(ctx, key, 1)
	return !limited, err
}

func (t throttledLimiter) Close() error { return nil }

// LibByName returns the library of that name from libs.
func LibByName(libs []Lib, name string) (Lib, error) {
	for _, l := range libs {
		if l.Name == name {
			return l, nil
		}
	}
	return Lib{}, fmt.Errorf("bench: no library %q", name)
}
