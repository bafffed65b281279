package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/internal/redistest"
)

var ctx = context.Background()

func newAbsolute(t *testing.T, srv *redistest.Server, opts ...trypema.Option) *client.Absolute {
	t.Helper()
	l, err := client.NewAbsolute(srv.Pool(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newSuppressed(t *testing.T, srv *redistest.Server, opts ...trypema.Option) *client.Suppressed {
	t.Helper()
	l, err := client.NewSuppressed(srv.Pool(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestExactAdmissionUnderConcurrency: 50 goroutines × 1,000 Inc on one key
// whose capacity is 500 admit exactly 500.
func TestExactAdmissionUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	srv.Pool().MaxActive = 50
	l := newAbsolute(t, srv, trypema.WithWindow(time.Minute))
	rate := trypema.MustPerSecond(500.0 / 60) // 500 per minute window
	var admitted, errs atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				d, err := l.Inc(ctx, "hot", rate, 1)
				if err != nil {
					errs.Add(1)
				} else if d.Admitted {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if errs.Load() != 0 || admitted.Load() != 500 {
		t.Fatalf("admitted %d with %d errors, want exactly 500", admitted.Load(), errs.Load())
	}
	if snap, _ := l.Get(ctx, "hot"); snap.Total != 500 || snap.Limit != 500 {
		t.Fatalf("Redis holds %+v, want total 500 of 500", snap)
	}
}

// TestNoScriptRecovery: the script cache is flushed between calls and the
// server restarts in the middle of a run; no error reaches the caller once
// the server is back, and every call is counted exactly once.
func TestNoScriptRecoveryAcrossRestart(t *testing.T) {
	srv := redistest.Start(t)
	l := newAbsolute(t, srv, trypema.WithWindow(time.Hour))
	rate := trypema.MustPerSecond(1000)
	calls := 0
	inc := func() {
		t.Helper()
		d, err := l.Inc(ctx, "k", rate, 1)
		if err != nil || !d.Admitted {
			t.Fatalf("call %d: %+v, %v", calls, d, err)
		}
		calls++
	}
	for i := 0; i < 10; i++ {
		inc()
		srv.Do(t, "SCRIPT", "FLUSH")
	}
	if snap, _ := l.Get(ctx, "k"); snap.Total != 10 {
		t.Fatalf("after flushes total = %d, want 10", snap.Total)
	}
	// A restart loses the data (no persistence) and the script cache.
	srv.Restart(t)
	for i := 0; i < 5; i++ {
		inc()
	}
	if snap, _ := l.Get(ctx, "k"); snap.Total != 5 {
		t.Fatalf("after the restart total = %d, want the 5 calls made since", snap.Total)
	}
	stats := commandStats(t, srv)
	if stats["evalsha"] == 0 || stats["script|load"] == 0 || stats["eval"] != 0 {
		t.Fatalf("command stats %v: want EVALSHA with SCRIPT LOAD on NOSCRIPT and never EVAL", stats)
	}
}

// TestServerDownFailurePolicy: with Redis stopped, each policy answers as
// documented and says the decision is degraded; the error keeps its cause.
func TestServerDownFailurePolicy(t *testing.T) {
	srv := redistest.Start(t)
	rate := trypema.MustPerSecond(10)
	lErr := newAbsolute(t, srv)
	lOpen := newSuppressed(t, srv, trypema.WithFailurePolicy(trypema.FailOpen))
	lClosed := newAbsolute(t, srv, trypema.WithFailurePolicy(trypema.FailClosed))
	srv.Stop(t)

	_, err := lErr.Inc(ctx, "k", rate, 1)
	if !errors.Is(err, trypema.ErrRedisUnavailable) {
		t.Fatalf("FailError: %v, want ErrRedisUnavailable", err)
	}
	d, err := lOpen.Inc(ctx, "k", rate, 1)
	if err != nil || d != (trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Degraded: true}) {
		t.Fatalf("FailOpen: %+v, %v", d, err)
	}
	d, err = lClosed.Inc(ctx, "k", rate, 1)
	if err != nil || d != (trypema.Decision{Outcome: trypema.Rejected, Degraded: true}) {
		t.Fatalf("FailClosed: %+v, %v", d, err)
	}
	if d, err := lClosed.IsAllowed(ctx, "k"); err != nil || !d.Degraded || d.Admitted {
		t.Fatalf("FailClosed IsAllowed: %+v, %v", d, err)
	}
	// Bad input is never hidden by the policy.
	if _, err := lOpen.Inc(ctx, "a:b", rate, 1); !errors.Is(err, trypema.ErrInvalidKey) {
		t.Fatalf("FailOpen with a bad key: %v", err)
	}
	// Non-decisions return the error whatever the policy.
	if _, err := lOpen.Get(ctx, "k"); !errors.Is(err, trypema.ErrRedisUnavailable) {
		t.Fatalf("Get with Redis down: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := lErr.Inc(cctx, "k", rate, 1); !errors.Is(err, context.Canceled) || !errors.Is(err, trypema.ErrRedisUnavailable) {
		t.Fatalf("canceled context: %v, want both ErrRedisUnavailable and context.Canceled", err)
	}
}

// TestHygiene: traffic on 10,000 keys, then 2 × W idle: SCAN of the prefix
// finds nothing, and every key the scripts created had a TTL ≤ W + B.
func TestHygiene(t *testing.T) {
	srv := redistest.Start(t)
	const window = time.Second
	opts := []trypema.Option{trypema.WithWindow(window), trypema.WithBucketSize(50 * time.Millisecond), trypema.WithPrefix("hyg")}
	abs := newAbsolute(t, srv, opts...)
	sup := newSuppressed(t, srv, opts...)
	rate := trypema.MustPerSecond(100)
	c := srv.Pool().Get()
	defer c.Close()
	for i := 0; i < 10_000; i++ {
		key := fmt.Sprint("user_", i)
		var l trypema.Limiter = abs
		if i%2 == 1 {
			l = sup
		}
		if _, err := l.Inc(ctx, key, rate, 1+int64(i%3)); err != nil {
			t.Fatal(err)
		}
		if i%997 == 0 {
			l.SetIf(ctx, key, rate, trypema.Always, 2, trypema.PreserveOldest)
		}
	}
	maxTTL := (window + 50*time.Millisecond).Milliseconds()
	// The first keys may already have expired: every key still there must
	// carry a TTL, and the keys of the last calls must be there.
	keys := scanAll(t, c, "hyg:*")
	if n, _ := redis.Int(c.Do("EXISTS", client.Keys("hyg", "sup", "user_9999")[0], client.Keys("hyg", "abs", "user_9998")[1])); n != 2 {
		t.Fatalf("the last keys written are missing (%d of 2)", n)
	}
	for _, k := range keys {
		ttl, err := redis.Int64(c.Do("PTTL", k))
		if err != nil || ttl == -1 || ttl > maxTTL {
			t.Fatalf("key %s has PTTL %d (%v), want at most %d", k, ttl, err, maxTTL)
		}
	}
	t.Logf("%d keys live right after the traffic, all with a TTL ≤ %d ms", len(keys), maxTTL)
	time.Sleep(2 * window)
	if keys := scanAll(t, c, "hyg:*"); len(keys) != 0 {
		t.Fatalf("after 2 × W idle, %d keys remain, e.g. %s", len(keys), keys[0])
	}
}

func scanAll(t *testing.T, c redis.Conn, pattern string) []string {
	t.Helper()
	var out []string
	cursor := "0"
	for {
		v, err := redis.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			t.Fatal(err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		out = append(out, keys...)
		if cursor == "0" {
			return out
		}
	}
}

// TestClearRemovesOnlyItsOwnKeys: Clear of one prefix and strategy leaves
// the other strategy, other prefixes and unrelated keys alone, and works
// past one SCAN batch.
func TestClearRemovesOnlyItsOwnKeys(t *testing.T) {
	srv := redistest.Start(t)
	rate := trypema.MustPerSecond(10)
	absA := newAbsolute(t, srv, trypema.WithPrefix("a"))
	supA := newSuppressed(t, srv, trypema.WithPrefix("a"))
	absB := newAbsolute(t, srv, trypema.WithPrefix("ab"))
	for i := 0; i < 2500; i++ {
		absA.Inc(ctx, fmt.Sprint("k", i), rate, 1)
	}
	supA.Inc(ctx, "k1", rate, 1)
	absB.Inc(ctx, "k1", rate, 1)
	srv.Do(t, "SET", "a:v1:abs:unrelated", "x")
	srv.Do(t, "SET", "other", "y")
	if err := absA.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	c := srv.Pool().Get()
	defer c.Close()
	if keys := scanAll(t, c, "a:v1:abs:{*"); len(keys) != 0 {
		t.Fatalf("Clear left %d of its keys", len(keys))
	}
	for _, l := range []trypema.Limiter{supA, absB} {
		if snap, _ := l.Get(ctx, "k1"); snap.Total != 1 {
			t.Fatalf("Clear touched another limiter's key: %+v", snap)
		}
	}
	if n, _ := redis.Int(c.Do("EXISTS", "a:v1:abs:unrelated", "other")); n != 2 {
		t.Fatal("Clear removed keys that are not a limiter's")
	}
}

// TestFunctionsAndEvalRO: the same calls through FCALL/FCALL_RO and
// EVALSHA_RO give the same answers as through EVALSHA, and really use
// those commands.
func TestFunctionsAndEvalRO(t *testing.T) {
	srv := redistest.Start(t)
	rate := trypema.MustPerSecond(5)
	clk := trypema.NewManualClock(1_000_000)
	build := func(prefix string, sopts ...client.ScriptsOption) *client.Absolute {
		l, err := client.NewAbsoluteWith(srv.Pool(), []trypema.Option{trypema.WithPrefix(prefix), trypema.WithClock(clk)}, sopts)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	limiters := []*client.Absolute{build("evalsha"), build("fcall", client.WithFunctions()), build("ro", client.WithEvalRO())}
	var answers [3][]trypema.Decision
	for step := 0; step < 60; step++ {
		clk.Set(1_000_000 + int64(step)*250)
		for i, l := range limiters {
			d, err := l.Inc(ctx, "k", rate, 1+int64(step%4))
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.IsAllowed(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			answers[i] = append(answers[i], d, r)
		}
	}
	for i := 1; i < 3; i++ {
		for j := range answers[0] {
			if answers[i][j] != answers[0][j] {
				t.Fatalf("limiter %d answer %d = %+v, EVALSHA gave %+v", i, j, answers[i][j], answers[0][j])
			}
		}
	}
	stats := commandStats(t, srv)
	for _, cmd := range []string{"fcall", "fcall_ro", "function|load", "evalsha_ro"} {
		if stats[cmd] == 0 {
			t.Errorf("no %s in command stats %v", cmd, stats)
		}
	}
}

// commandStats returns the call counts of INFO commandstats by command name.
func commandStats(t *testing.T, srv *redistest.Server) map[string]int {
	t.Helper()
	info, err := redis.String(srv.Do(t, "INFO", "commandstats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls int
		fmt.Sscanf(rest, "calls=%d", &calls)
		out[strings.TrimPrefix(name, "cmdstat_")] = calls
	}
	return out
}

func TestConstructorAndInputValidation(t *testing.T) {
	if _, err := client.NewAbsolute(nil); !errors.Is(err, trypema.ErrInvalidArg) {
		t.Fatalf("nil pool: %v", err)
	}
	srv := redistest.Start(t)
	if _, err := client.NewSuppressed(srv.Pool(), trypema.WithPrefix("bad:prefix")); !errors.Is(err, trypema.ErrInvalidPrefix) {
		t.Fatalf("bad prefix: %v", err)
	}
	l := newAbsolute(t, srv)
	rate := trypema.MustPerSecond(10)
	for _, c := range []struct {
		key  string
		rate trypema.Rate
		n    int64
		want error
	}{
		{"", rate, 1, trypema.ErrInvalidKey},
		{"k", -1, 1, trypema.ErrInvalidRate},
		{"k", rate, 0, trypema.ErrInvalidCount},
		{"k", trypema.MustPerSecond(0.01), 1, trypema.ErrZeroCapacity},
		{"k", rate, 101, trypema.ErrCountExceedsCapacity},
	} {
		if _, err := l.Inc(ctx, c.key, c.rate, c.n); !errors.Is(err, c.want) {
			t.Errorf("Inc(%q, %v, %d) = %v, want %v", c.key, c.rate, c.n, err, c.want)
		}
	}
	if snap, _ := l.Get(ctx, "k"); snap.Exists {
		t.Fatal("failed calls created state")
	}
	l.Close()
	if _, err := l.Inc(ctx, "k", rate, 1); !errors.Is(err, trypema.ErrClosed) {
		t.Fatalf("Inc after Close: %v", err)
	}
}
