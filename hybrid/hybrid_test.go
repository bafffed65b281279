package hybrid_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/hybrid"
	"github.com/trypema-go/trypema/internal/redistest"
	"go.uber.org/goleak"
)

var ctx = context.Background()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newAbsolute(t *testing.T, srv *redistest.Server, opts ...trypema.Option) *hybrid.Absolute {
	t.Helper()
	l, err := hybrid.NewAbsolute(srv.Pool(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestInstancesShareOneKeyExactly: three instances in one process, each
// with 8 goroutines, saturate one key of capacity 1,000 for 3 windows on a
// shared simulated clock. No window of W holds more than 1,000 admitted
// units (over-admission 0), and each window uses at least 95 % of them.
func TestInstancesShareOneKeyExactly(t *testing.T) {
	srv := redistest.Start(t)
	const (
		windowMs = 1000
		capacity = 1000
		steps    = 3 * windowMs
	)
	clk := trypema.NewManualClock(1_700_000_000_000)
	start := clk.NowMs()
	rate := trypema.MustPerSecond(capacity)
	var instances []*hybrid.Absolute
	for i := 0; i < 3; i++ {
		instances = append(instances, newAbsolute(t, srv, trypema.WithWindow(windowMs*time.Millisecond),
			trypema.WithClock(clk), trypema.WithSyncInterval(5*time.Millisecond)))
	}
	perMs := make([]atomic.Int64, steps)
	var errs atomic.Int64
	var wg sync.WaitGroup
	stepStart := make([]chan struct{}, 24)
	stepDone := make(chan struct{}, 24)
	for g := 0; g < 24; g++ {
		stepStart[g] = make(chan struct{})
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			l := instances[g%3]
			for step := range stepStart[g] {
				_ = step
				for i := 0; i < 2; i++ {
					d, err := l.Inc(ctx, "shared", rate, 1)
					if err != nil {
						errs.Add(1)
					} else if d.Admitted {
						perMs[clk.NowMs()-start].Add(1)
					}
				}
				stepDone <- struct{}{}
			}
		}(g)
	}
	for s := 0; s < steps; s++ {
		clk.Set(start + int64(s))
		for g := range stepStart {
			stepStart[g] <- struct{}{}
		}
		for range stepStart {
			<-stepDone
		}
	}
	for g := range stepStart {
		close(stepStart[g])
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d calls failed", errs.Load())
	}
	// Brute force over every window (t − W, t].
	var inWindow, worst int64
	for s := 0; s < steps; s++ {
		inWindow += perMs[s].Load()
		if s >= windowMs {
			inWindow -= perMs[s-windowMs].Load()
		}
		worst = max(worst, inWindow)
	}
	perWindow := make([]int64, steps/windowMs)
	for s := 0; s < steps; s++ {
		perWindow[s/windowMs] += perMs[s].Load()
	}
	t.Logf("admitted per window %v (capacity %d), most in any window %d", perWindow, capacity, worst)
	if worst > capacity {
		t.Errorf("over-admission: %d units in one window of capacity %d", worst, capacity)
	}
	for w, n := range perWindow {
		if n < capacity*95/100 {
			t.Errorf("window %d used %d of %d (below 95%%)", w, n, capacity)
		}
	}
	for _, l := range instances {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveTotal(t, srv, "shared", clk.NowMs()); got > capacity {
		t.Errorf("Redis holds %d live units after Close, more than the capacity", got)
	}
}

// liveTotal reads a key's live total through the Redis provider's script.
func liveTotal(t *testing.T, srv *redistest.Server, key string, now int64) int64 {
	t.Helper()
	l, err := hybrid.NewAbsolute(srv.Pool(), []trypema.Option{trypema.WithWindow(time.Second), trypema.WithClock(trypema.NewManualClock(now))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := l.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Total
}

// TestRedisOutage: with Redis stopped, a key with local state keeps
// deciding locally and a key without follows the failure policy; after the
// restart, every unit admitted locally is committed exactly once.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	clk := trypema.NewManualClock(5_000_000)
	l := newAbsolute(t, srv, trypema.WithWindow(time.Hour), trypema.WithClock(clk),
		trypema.WithFailurePolicy(trypema.FailClosed), trypema.WithSyncInterval(time.Millisecond))
	rate := trypema.MustPerHour(100)
	for i := 0; i < 10; i++ {
		if d, err := l.Inc(ctx, "known", rate, 1); err != nil || !d.Admitted {
			t.Fatalf("before the outage: %+v, %v", d, err)
		}
	}
	waitFor(t, func() bool { return redisTotal(t, srv, "known") == 10 })

	srv.Stop(t)
	admitted := 0
	for i := 0; i < 30; i++ {
		clk.Advance(time.Millisecond)
		d, err := l.Inc(ctx, "known", rate, 1)
		if err != nil {
			t.Fatalf("a key with local state failed during the outage: %v", err)
		}
		if d.Admitted {
			admitted++
		}
	}
	if admitted == 0 {
		t.Fatal("a key with local state admitted nothing during the outage")
	}
	d, err := l.Inc(ctx, "unknown", rate, 1)
	if err != nil || d != (trypema.Decision{Outcome: trypema.Rejected, Degraded: true}) {
		t.Fatalf("a key without local state under FailClosed: %+v, %v", d, err)
	}
	time.Sleep(20 * time.Millisecond) // background syncs fail and are kept

	srv.Start(t) // empty: no persistence
	waitFor(t, func() bool { return redisTotal(t, srv, "known") >= int64(admitted) })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The restart lost the 10 units of before; the units admitted during the
	// outage are there, once.
	if got := redisTotal(t, srv, "known"); got != int64(admitted) {
		t.Fatalf("Redis holds %d units, want the %d admitted during the outage, exactly once", got, admitted)
	}
}

func redisTotal(t *testing.T, srv *redistest.Server, key string) int64 {
	t.Helper()
	c := srv.Pool().Get()
	defer c.Close()
	v, err := redis.Int64(c.Do("HGET", "trypema:v1:abs:{"+key+"}:meta", "total"))
	if errors.Is(err, redis.ErrNil) {
		return 0
	}
	if err != nil {
		return -1
	}
	return v
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLateCommitExpiresOnTime: a burst admitted locally while Redis is
// down is committed after the restart with the time it happened, so it
// leaves the window W after the burst, not W after the commit.
func TestLateCommitExpiresOnTime(t *testing.T) {
	srv := redistest.Start(t)
	clk := trypema.NewManualClock(9_000_000)
	l := newAbsolute(t, srv, trypema.WithWindow(10*time.Second), trypema.WithClock(clk),
		trypema.WithSyncInterval(time.Millisecond))
	rate := trypema.MustPerSecond(10)
	l.Inc(ctx, "burst", rate, 1)
	waitFor(t, func() bool { return redisTotal(t, srv, "burst") == 1 })
	srv.Stop(t)
	burstAt := clk.NowMs() + 1000
	clk.Set(burstAt)
	for i := 0; i < 5; i++ {
		if d, err := l.Inc(ctx, "burst", rate, 1); err != nil || !d.Admitted {
			t.Fatalf("burst call %d: %+v, %v", i, d, err)
		}
	}
	clk.Set(burstAt + 4000) // the commit happens 4 s after the burst
	srv.Start(t)
	waitFor(t, func() bool { return redisTotal(t, srv, "burst") == 5 })
	clk.Set(burstAt + 9999)
	if s, err := l.Get(ctx, "burst"); err != nil || s.Total != 5 {
		t.Fatalf("1 ms before W after the burst: %+v, %v; want the 5 units", s, err)
	}
	clk.Set(burstAt + 10_000)
	if s, err := l.Get(ctx, "burst"); err != nil || s.Total != 0 {
		t.Fatalf("W after the burst: %+v, %v; want the burst gone, not kept until W after the commit", s, err)
	}
}

// TestCloseFlushes: units admitted from a reservation and not yet synced
// are committed by Close, reservations are handed back, and no goroutine is
// left (goleak in TestMain).
func TestCloseFlushes(t *testing.T) {
	srv := redistest.Start(t)
	l, err := hybrid.NewAbsolute(srv.Pool(), []trypema.Option{trypema.WithSyncInterval(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	rate := trypema.MustPerSecond(1000)
	total := 0
	for i := 0; i < 50; i++ {
		if d, _ := l.Inc(ctx, "k", rate, 2); d.Admitted {
			total += 2
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := redisTotal(t, srv, "k"); got != int64(total) {
		t.Fatalf("after Close Redis holds %d units, want the %d admitted (no reservation left)", got, total)
	}
	if _, err := l.Inc(ctx, "k", rate, 1); !errors.Is(err, trypema.ErrClosed) {
		t.Fatalf("Inc after Close: %v", err)
	}
}

// TestTryInc decides from local state only, and records nothing when it
// cannot.
func TestTryInc(t *testing.T) {
	srv := redistest.Start(t)
	l := newAbsolute(t, srv, trypema.WithSyncInterval(time.Hour))
	if _, ok, err := l.TryInc("k", 1); ok || err != nil {
		t.Fatalf("TryInc on a key never seen: ok=%v err=%v, want a need for Redis", ok, err)
	}
	rate := trypema.MustPerSecond(1000)
	for i := 0; i < 2; i++ {
		l.Inc(ctx, "k", rate, 1) // demand makes the second sync reserve 2 more
	}
	d, ok, err := l.TryInc("k", 1)
	if !ok || err != nil || !d.Admitted {
		t.Fatalf("TryInc within the reservation: %+v ok=%v err=%v", d, ok, err)
	}
	if _, ok, _ := l.TryInc("k", 500); ok {
		t.Fatal("TryInc beyond the reservation must need Redis")
	}
	if _, _, err := l.TryInc("a:b", 1); !errors.Is(err, trypema.ErrInvalidKey) {
		t.Fatalf("TryInc with a bad key: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := redisTotal(t, srv, "k"); got != 3 {
		t.Fatalf("Redis total %d, want the 3 admitted units (the refused TryInc recorded nothing)", got)
	}
}
