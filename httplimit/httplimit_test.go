package httplimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/httplimit"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/localcache"
)

// The limiters under test come from a provider: local or Redis, each with
// both strategies, on a manual clock so that waits are exact.
type provider struct {
	name       string
	absolute   func(t *testing.T, opts ...trypema.Option) trypema.Limiter
	suppressed func(t *testing.T, opts ...trypema.Option) trypema.Limiter
}

func providers() []provider {
	closeWith := func(t *testing.T, l trypema.Limiter, err error) trypema.Limiter {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	return []provider{
		{
			name: "local",
			absolute: func(t *testing.T, opts ...trypema.Option) trypema.Limiter {
				l, err := localcache.NewAbsolute(opts...)
				return closeWith(t, l, err)
			},
			suppressed: func(t *testing.T, opts ...trypema.Option) trypema.Limiter {
				l, err := localcache.NewSuppressed(opts...)
				return closeWith(t, l, err)
			},
		},
		{
			name: "redis",
			absolute: func(t *testing.T, opts ...trypema.Option) trypema.Limiter {
				l, err := client.NewAbsolute(redistest.Start(t).Pool(), opts...)
				return closeWith(t, l, err)
			},
			suppressed: func(t *testing.T, opts ...trypema.Option) trypema.Limiter {
				l, err := client.NewSuppressed(redistest.Start(t).Pool(), opts...)
				return closeWith(t, l, err)
			},
		},
	}
}

// serve puts an OK handler behind mw on a real HTTP server; the handler
// echoes the decision it finds in its context.
func serve(t *testing.T, mw *httplimit.Middleware) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := httplimit.DecisionFrom(r.Context())
		fmt.Fprintf(w, "ok %v %v degraded=%v", ok, d.Outcome, d.Degraded)
	})))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+"/thing", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(body)}
}

// check compares a reply's status and the named header fields; "" means
// the field must be absent.
func check(t *testing.T, what string, got reply, status int, fields ...string) {
	t.Helper()
	if got.status != status {
		t.Errorf("%s: status %d, want %d (body %q)", what, got.status, status, got.body)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		name, want := fields[i], fields[i+1]
		if v := strings.Join(got.header.Values(name), ", "); v != want {
			t.Errorf("%s: %s = %q, want %q", what, name, v, want)
		}
	}
}

func TestAbsolute(t *testing.T) {
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			clk := trypema.NewManualClock(time.Now().UnixMilli())
			lim := p.absolute(t, trypema.WithWindow(10*time.Second), trypema.WithClock(clk))
			// 0.2/s over 10 s: a capacity of 2 per key.
			mw, err := httplimit.New(lim, trypema.MustPerSecond(0.2), httplimit.WithWindow(10*time.Second),
				httplimit.WithHeaders(httplimit.DefaultHeaders|httplimit.LegacyHeaders))
			if err != nil {
				t.Fatal(err)
			}
			srv := serve(t, mw)

			r := get(t, srv)
			check(t, "first", r, 200,
				"RateLimit-Policy", `"default";q=2;w=10`,
				"RateLimit", `"default";r=1;t=10`,
				"X-RateLimit-Limit", "2", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "10",
				"Retry-After", "", "Trypema-Degraded", "")
			if r.body != "ok true allowed degraded=false" {
				t.Errorf("body %q: the handler did not see the decision", r.body)
			}
			clk.Advance(1500 * time.Millisecond)
			check(t, "second", get(t, srv), 200, "RateLimit", `"default";r=0;t=10`)

			// The oldest call leaves the window 10 s after it was made:
			// 8.5 s from now, rounded up to 9.
			clk.Advance(time.Second)
			r = get(t, srv)
			check(t, "rejected", r, 429,
				"RateLimit-Policy", `"default";q=2;w=10`,
				"RateLimit", `"default";r=0;t=8`,
				"Retry-After", "8",
				"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "8")
			if !strings.Contains(r.body, "retry after 8 s") {
				t.Errorf("rejected body %q does not say when to retry", r.body)
			}
			clk.Advance(7500*time.Millisecond - time.Millisecond)
			check(t, "1 ms early", get(t, srv), 429, "Retry-After", "1")
			clk.Advance(time.Millisecond)
			check(t, "on time", get(t, srv), 200, "RateLimit", `"default";r=0;t=10`)
		})
	}
}

// draws hands out the suppressed strategy's uniform draws.
type draws struct{ next atomic.Uint64 }

func (d *draws) set(u float64) { d.next.Store(math.Float64bits(u)) }
func (d *draws) draw() float64 { return math.Float64frombits(d.next.Load()) }

func TestSuppressed(t *testing.T) {
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			clk := trypema.NewManualClock(time.Now().UnixMilli())
			var u draws
			lim := p.suppressed(t, trypema.WithWindow(10*time.Second), trypema.WithClock(clk),
				trypema.WithHardLimitFactor(2), trypema.WithRandom(u.draw))
			// 1/s over 10 s: soft cap 10, hard cap 20.
			mw, err := httplimit.New(lim, trypema.MustPerSecond(1), httplimit.WithWindow(10*time.Second),
				httplimit.WithKey(httplimit.KeyByHeader("X-Api-Key")))
			if err != nil {
				t.Fatal(err)
			}
			srv := serve(t, mw)
			for i := range 10 {
				check(t, "under the soft cap", get(t, srv, "X-Api-Key", "k1"), 200,
					"RateLimit", fmt.Sprintf(`"default";r=%d;t=10`, 9-i), "Retry-After", "")
			}
			// Ten calls at one instant: perceived 10/s against a rate of
			// 1/s, so the factor is 1 - 1/10 = 0.9.
			u.set(0.05)
			r := get(t, srv, "X-Api-Key", "k1")
			check(t, "suppressed, admitted", r, 200,
				"RateLimit-Policy", `"default";q=10;w=10`,
				"RateLimit", `"default";r=0;t=10;trypema-factor=0.9`,
				"Retry-After", "")
			if r.body != "ok true suppressed degraded=false" {
				t.Errorf("body %q", r.body)
			}
			u.set(0.5)
			r = get(t, srv, "X-Api-Key", "k1")
			check(t, "suppressed, denied", r, 429,
				"RateLimit-Policy", `"default";q=10;w=10`,
				"RateLimit", `"default";r=0;t=1;trypema-factor=0.9`,
				"Retry-After", "1")
			// Another key has its own quota.
			check(t, "other key", get(t, srv, "X-Api-Key", "k2"), 200, "RateLimit", `"default";r=9;t=10`)
		})
	}
}

// failing is a limiter whose every call fails with err, or answers d.
type failing struct {
	d   trypema.Decision
	err error
}

func (f failing) Inc(context.Context, string, trypema.Rate, int64) (trypema.Decision, error) {
	return f.d, f.err
}

func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

func TestRedisUnavailable(t *testing.T) {
	down := failing{err: fmt.Errorf("%w: absolute_inc: dial tcp: connection refused", trypema.ErrRedisUnavailable)}
	for _, tc := range []struct {
		name     string
		lim      httplimit.Limiter
		opts     []httplimit.Option
		status   int
		degraded string
		logged   string
	}{
		{"error, fail open", down, nil, 200, "fail-open", "rate limiter unavailable"},
		{"error, fail closed", down, []httplimit.Option{httplimit.WithFailureMode(httplimit.FailClosed)}, 503, "fail-closed", "rate limiter unavailable"},
		{"error, fail open, no header", down, []httplimit.Option{httplimit.WithHeaders(httplimit.IETFHeaders)}, 200, "", "rate limiter unavailable"},
		{"limiter fails open", failing{d: trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Degraded: true}}, nil, 200, "fail-open", "its failure policy"},
		{"limiter fails closed", failing{d: trypema.Decision{Outcome: trypema.Rejected, Degraded: true}}, nil, 503, "fail-closed", "its failure policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			mw, err := httplimit.New(tc.lim, trypema.MustPerSecond(1), append(tc.opts, httplimit.WithLogger(logTo(&log)))...)
			if err != nil {
				t.Fatal(err)
			}
			srv := serve(t, mw)
			r := get(t, srv)
			check(t, tc.name, r, tc.status, "Trypema-Degraded", tc.degraded, "RateLimit", "", "Retry-After", "")
			if tc.status == 200 && r.body != "ok true allowed degraded=true" {
				t.Errorf("body %q: the handler should see a degraded decision", r.body)
			}
			if !strings.Contains(log.String(), tc.logged) {
				t.Errorf("log %q does not contain %q", log.String(), tc.logged)
			}
			// A burst of failures logs once a second, not once a request.
			for range 9 {
				get(t, srv)
			}
			if n := strings.Count(log.String(), "level=WARN"); n < 1 || n > 2 {
				t.Errorf("%d warnings for a burst of 10 failures, want 1 (2 if the burst took over a second):\n%s", n, log.String())
			}
		})
	}
}

// TestRedisDown stops a real server under a Redis limiter.
func TestRedisDown(t *testing.T) {
	rs := redistest.Start(t)
	lim, err := client.NewAbsolute(rs.Pool())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	open, err := httplimit.New(lim, trypema.MustPerSecond(10), httplimit.WithLogger(logTo(&log)))
	if err != nil {
		t.Fatal(err)
	}
	closed, err := httplimit.New(lim, trypema.MustPerSecond(10), httplimit.WithLogger(logTo(&log)),
		httplimit.WithFailureMode(httplimit.FailClosed), httplimit.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	openSrv, closedSrv := serve(t, open), serve(t, closed)
	check(t, "up, open", get(t, openSrv), 200, "RateLimit", `"default";r=99;t=10`, "Trypema-Degraded", "")
	check(t, "up, closed", get(t, closedSrv), 200, "RateLimit", `"default";r=98;t=10`, "Trypema-Degraded", "")
	rs.Stop(t)
	check(t, "down, open", get(t, openSrv), 200, "RateLimit", "", "Trypema-Degraded", "fail-open")
	check(t, "down, closed", get(t, closedSrv), 503, "RateLimit", "", "Trypema-Degraded", "fail-closed")
	if !strings.Contains(log.String(), "ErrRedisUnavailable") && !strings.Contains(log.String(), "redis unavailable") {
		t.Errorf("log does not name the cause:\n%s", log.String())
	}
	rs.Start(t)
	check(t, "back", get(t, openSrv), 200, "RateLimit", `"default";r=99;t=10`, "Trypema-Degraded", "")
}

func TestLimiterErrors(t *testing.T) {
	lim, err := localcache.NewAbsolute()
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	var log bytes.Buffer
	// A key function that returns invalid keys is a programming error: 500,
	// logged.
	mw, err := httplimit.New(lim, trypema.MustPerSecond(1), httplimit.WithLogger(logTo(&log)),
		httplimit.WithKey(func(r *http.Request) (string, error) { return "user:" + r.URL.Query().Get("u"), nil }))
	if err != nil {
		t.Fatal(err)
	}
	r := get(t, serve(t, mw))
	check(t, "bad key", r, 500, "RateLimit", "", "Retry-After", "")
	if strings.Contains(r.body, "user:") {
		t.Errorf("the 500 body %q reveals details", r.body)
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "invalid key") {
		t.Errorf("log %q does not explain the 500", log.String())
	}

	// A missing key header is the client's doing: 400, not logged.
	log.Reset()
	mw, err = httplimit.New(lim, trypema.MustPerSecond(1), httplimit.WithLogger(logTo(&log)),
		httplimit.WithKey(httplimit.KeyByHeader("x-api-key")))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, mw)
	check(t, "no key", get(t, srv), 400, "RateLimit", "")
	if log.Len() != 0 {
		t.Errorf("a missing key was logged: %s", log.String())
	}
	// Header values that are not keys are hashed, not refused.
	check(t, "colon", get(t, srv, "X-Api-Key", "a:b"), 200, "RateLimit", `"default";r=9;t=10`)
	check(t, "long", get(t, srv, "X-Api-Key", strings.Repeat("x", 1000)), 200, "RateLimit", `"default";r=9;t=10`)

	// A count larger than the capacity can never succeed: 500, logged.
	log.Reset()
	mw, err = httplimit.New(lim, trypema.MustPerSecond(1), httplimit.WithLogger(logTo(&log)), httplimit.WithCount(11))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "count exceeds capacity", get(t, serve(t, mw)), 500)
	if !strings.Contains(log.String(), "count exceeds capacity") {
		t.Errorf("log %q", log.String())
	}
}

func TestCostAndOptions(t *testing.T) {
	lim, err := localcache.NewAbsolute(trypema.WithWindow(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	// Uploads cost their size in KiB at 100 KiB/s; others one unit at 1/s.
	cost := func(r *http.Request) (trypema.Rate, int64, error) {
		if r.ContentLength > 0 {
			return trypema.MustPerSecond(100), (r.ContentLength + 1023) / 1024, nil
		}
		return trypema.MustPerSecond(1), 1, nil
	}
	var denied atomic.Int32
	mw, err := httplimit.New(lim, 0, httplimit.WithCost(cost), httplimit.WithWindow(time.Minute),
		httplimit.WithPolicyName(`per "user"`), httplimit.WithKey(httplimit.KeyByHeader("User")),
		httplimit.WithDeniedHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d, _ := httplimit.DecisionFrom(r.Context())
			denied.Add(1)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"title":"quota exceeded","retry_after_ms":%d}`, d.RetryAfter.Milliseconds())
		})))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, mw)
	post := func(size int) reply {
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(make([]byte, size)))
		req.Header.Set("User", "u1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return reply{resp.StatusCode, resp.Header, string(b)}
	}
	// 100 KiB/s over a minute is 6000 units; 4000 KiB, then 2500 KiB more.
	check(t, "upload", post(4000*1024), 200,
		"RateLimit-Policy", `"per \"user\"";q=6000;w=60`, "RateLimit", `"per \"user\"";r=2000;t=60`)
	r := post(2500 * 1024)
	check(t, "too big", r, 429, "RateLimit", `"per \"user\"";r=2000;t=60`, "Retry-After", "60",
		"Content-Type", "application/problem+json")
	if denied.Load() != 1 || !strings.Contains(r.body, `"retry_after_ms":`) {
		t.Errorf("denied handler: %d calls, body %q", denied.Load(), r.body)
	}

	// No quota headers: Retry-After stays on a 429.
	mw, err = httplimit.New(lim, trypema.MustPerMinute(1), httplimit.WithHeaders(0), httplimit.WithWindow(time.Minute),
		httplimit.WithKey(httplimit.KeyByHeader("User")))
	if err != nil {
		t.Fatal(err)
	}
	srv = serve(t, mw)
	check(t, "no headers", get(t, srv, "User", "u2"), 200, "RateLimit", "", "RateLimit-Policy", "", "X-RateLimit-Limit", "")
	check(t, "no headers, rejected", get(t, srv, "User", "u2"), 429, "RateLimit", "", "Retry-After", "60")
}

func TestNewRejectsBadOptions(t *testing.T) {
	lim, err := localcache.NewAbsolute()
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	one := trypema.MustPerSecond(1)
	for _, tc := range []struct {
		name string
		lim  httplimit.Limiter
		rate trypema.Rate
		opt  httplimit.Option
		want error
	}{
		{"nil limiter", nil, one, nil, trypema.ErrInvalidArg},
		{"zero rate", lim, 0, nil, trypema.ErrInvalidRate},
		{"NaN rate", lim, trypema.Rate(math.NaN()), nil, trypema.ErrInvalidRate},
		{"count 0", lim, one, httplimit.WithCount(0), trypema.ErrInvalidOption},
		{"nil key", lim, one, httplimit.WithKey(nil), trypema.ErrInvalidOption},
		{"tiny window", lim, one, httplimit.WithWindow(time.Microsecond), trypema.ErrInvalidOption},
		{"empty policy", lim, one, httplimit.WithPolicyName(""), trypema.ErrInvalidOption},
		{"policy with newline", lim, one, httplimit.WithPolicyName("a\nb"), trypema.ErrInvalidOption},
		{"failure mode", lim, one, httplimit.WithFailureMode(7), trypema.ErrInvalidOption},
		{"timeout", lim, one, httplimit.WithTimeout(0), trypema.ErrInvalidOption},
	} {
		if _, err := httplimit.New(tc.lim, tc.rate, tc.opt); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestHostileRequests sends what clients control: odd header values,
// floods of X-Forwarded-For and huge keys. Nothing may panic (a panic in a
// handler closes the connection, which Do reports).
func TestHostileRequests(t *testing.T) {
	lim, err := localcache.NewSuppressed()
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	for _, key := range []httplimit.KeyFunc{httplimit.KeyByIP(), httplimit.KeyByHeader("K"), httplimit.KeyByForwardedFor(netip.MustParsePrefix("127.0.0.0/8"))} {
		mw, err := httplimit.New(lim, trypema.MustPerSecond(1000), httplimit.WithKey(key), httplimit.WithLogger(logTo(new(bytes.Buffer))))
		if err != nil {
			t.Fatal(err)
		}
		srv := serve(t, mw)
		for _, v := range []string{"", " ", ":", "::::", "\t", strings.Repeat("é", 300), "1.2.3.4, , garbage", "[::1]:80", "fe80::1%eth0"} {
			r := get(t, srv, "K", v, "X-Forwarded-For", v)
			if r.status != 200 && r.status != 400 && r.status != 500 {
				t.Errorf("%q: status %d", v, r.status)
			}
		}
	}
}

// Redis keys the middleware's requests created, for a look at what a
// Redis limiter stored.
func TestRedisKeysFollowTheLayout(t *testing.T) {
	rs := redistest.Start(t)
	lim, err := client.NewAbsolute(rs.Pool())
	if err != nil {
		t.Fatal(err)
	}
	mw, err := httplimit.New(lim, trypema.MustPerSecond(1))
	if err != nil {
		t.Fatal(err)
	}
	get(t, serve(t, mw))
	keys, err := redis.Strings(rs.Do(t, "KEYS", "*"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := client.Keys("trypema", "abs", "127.0.0.1")
	if len(keys) != 2 || !(keys[0] == want[0] || keys[0] == want[1]) {
		t.Errorf("keys %q, want %q", keys, want)
	}
}
