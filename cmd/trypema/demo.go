package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/httplimit"
	"github.com/trypema-go/trypema/hybrid"
	"github.com/trypema-go/trypema/internal/redisproc"
	"github.com/trypema-go/trypema/localcache"
)

// The demo's policy: every client may make demoLimit requests a second,
// over a window short enough that a few seconds of traffic show the steady
// state.
const (
	demoLimit  = 20.0 // requests per second per client
	demoWindow = 2 * time.Second
	// A bucket of 1% of the window: with the default 100 ms (5% of this
	// short window) jittery arrivals settle the suppressed strategy about
	// 5% below its target.
	demoBucket      = 20 * time.Millisecond
	demoHardLimit   = 1.5 // suppressed: hard cap = 1.5 × capacity
	demoClientHdr   = "X-Client"
	defaultDuration = 12 * time.Second
)

// demoClient is one HTTP client of the demo, sending evenly spaced requests.
type demoClient struct {
	name    string
	rate    float64 // requests offered per second
	abusive bool
}

var demoClients = []demoClient{
	{name: "alice", rate: 2},
	{name: "bob", rate: 8},
	{name: "carol", rate: 15},
	{name: "mallory", rate: 5 * demoLimit, abusive: true},
}

// demoProvider is one provider of the table. The hybrid provider will be
// one more entry in the list that demoProviders returns.
type demoProvider struct {
	name       string
	about      string // where its state lives, for the header
	absolute   func(opts ...trypema.Option) (trypema.Limiter, error)
	suppressed func(opts ...trypema.Option) (trypema.Limiter, error)
}

func demoCommand() *command {
	var duration time.Duration
	var redisURL string
	var localOnly bool
	c := &command{
		name:    "demo",
		summary: "demo [-duration 12s] [-redis URL | -local]",
		doc: `Serve HTTP on a loopback port behind the httplimit middleware, once per
provider and strategy, and drive it with real requests from four clients at
different rates (mallory is abusive, at 5× the limit) for -duration, with a
live progress line. Then print, per provider and strategy, each client's
offered and admitted rate, rejected and suppressed counts, and latency p50
and p99.

The redis provider needs a Redis: -redis URL or $REDIS_URL, else a
throwaway redis-server started for the demo when one is installed. Without
either the demo runs the local provider only and says how to add Redis.
`,
		flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&duration, "duration", defaultDuration, "how long to send traffic (1s to 5m)")
			fs.StringVar(&redisURL, "redis", "", "Redis URL for the redis provider (default: $REDIS_URL, else a throwaway redis-server)")
			fs.BoolVar(&localOnly, "local", false, "run the local provider only")
		},
	}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.flagSet()
		pos, code, ok := c.parse(fs, args, stdout, stderr)
		if !ok {
			return code
		}
		if len(pos) > 0 {
			return usageErr(stderr, c.name, "unexpected argument %q", pos[0])
		}
		if duration < time.Second || duration > 5*time.Minute {
			return usageErr(stderr, c.name, "-duration %v: use 1s to 5m", duration)
		}
		if localOnly && redisURL != "" {
			return usageErr(stderr, c.name, "-local and -redis exclude each other")
		}
		if err := demo(stdout, duration, redisURL, localOnly); err != nil {
			fmt.Fprintln(stderr, "trypema demo:", err)
			return exitFailure
		}
		return exitOK
	}
	return c
}

// demoRedis finds the Redis of the demo: -redis, $REDIS_URL, or a
// throwaway redis-server. It returns a nil pool and a note saying why when
// there is none.
func demoRedis(ctx context.Context, url string, localOnly bool) (pool *redis.Pool, about, note string, stop func(), err error) {
	stop = func() {}
	if localOnly {
		return nil, "", "redis provider skipped (-local)", stop, nil
	}
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	if url != "" {
		pool, err = openPool(ctx, url)
		if err != nil {
			return nil, "", "", stop, fmt.Errorf("%w\n(run with -local to skip the redis provider)", err)
		}
		return pool, "the Redis at " + url, "", stop, nil
	}
	srv, err := redisproc.Start(ctx, redisproc.Config{})
	if errors.Is(err, redisproc.ErrNotInstalled) {
		return nil, "", "redis provider skipped: redis-server is not installed and REDIS_URL is not set.\n" +
			"  To include it: sudo apt-get install redis-server (Debian/Ubuntu), or\n" +
			"  REDIS_URL=redis://host:6379/0 make demo", stop, nil
	}
	if err != nil {
		return nil, "", "", stop, err
	}
	if pool, err = openPool(ctx, srv.URL()); err != nil {
		srv.Stop()
		return nil, "", "", stop, err
	}
	version := ""
	if c := pool.Get(); c != nil {
		if info, err := redis.String(c.Do("INFO", "server")); err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					version = " " + v
				}
			}
		}
		c.Close()
	}
	return pool, fmt.Sprintf("a throwaway redis-server%s on %s, started for the demo", version, srv.Addr()), "",
		func() { pool.Close(); srv.Stop() }, nil
}

func demoProviders(pool *redis.Pool, redisAbout string) []demoProvider {
	ps := []demoProvider{{
		name:  "local",
		about: "in-process memory",
		absolute: func(opts ...trypema.Option) (trypema.Limiter, error) {
			return localcache.NewAbsolute(opts...)
		},
		suppressed: func(opts ...trypema.Option) (trypema.Limiter, error) {
			return localcache.NewSuppressed(opts...)
		},
	}}
	if pool != nil {
		ps = append(ps, demoProvider{
			name:  "redis",
			about: redisAbout,
			absolute: func(opts ...trypema.Option) (trypema.Limiter, error) {
				return client.NewAbsolute(pool, opts...)
			},
			suppressed: func(opts ...trypema.Option) (trypema.Limiter, error) {
				return client.NewSuppressed(pool, opts...)
			},
		}, demoProvider{
			name:  "hybrid",
			about: redisAbout + ", decided locally from reservations synced every 10 ms",
			absolute: func(opts ...trypema.Option) (trypema.Limiter, error) {
				return hybrid.NewAbsolute(pool, opts)
			},
			suppressed: func(opts ...trypema.Option) (trypema.Limiter, error) {
				return hybrid.NewSuppressed(pool, opts)
			},
		})
	}
	return ps
}

// scenario is one provider and strategy behind its own middleware.
type scenario struct {
	provider, strategy string
	path               string
	lim                trypema.Limiter
	stats              []*clientStats // one per demoClients entry
}

// clientStats are one client's results in one scenario.
type clientStats struct {
	mu                     sync.Mutex
	sent, allowed          int
	rejected               int
	supAdmitted, supDenied int
	failed                 int             // transport errors and unexpected statuses
	steadySent, steadyAdm  int             // requests sent once the first window had passed
	latency                []time.Duration // of answered requests
}

// progress counts every scenario's requests for the live line.
type progress struct {
	sent, admitted, refused, failed atomic.Int64
}

func demo(w io.Writer, duration time.Duration, redisURL string, localOnly bool) error {
	ctx := context.Background()
	pool, redisAbout, note, stopRedis, err := demoRedis(ctx, redisURL, localOnly)
	if err != nil {
		return err
	}
	defer stopRedis()

	rate := trypema.MustPerSecond(demoLimit)
	capacity, hard, err := trypema.Capacity(rate, demoWindow.Milliseconds(), demoHardLimit)
	if err != nil {
		return err
	}
	opts := []trypema.Option{
		trypema.WithWindow(demoWindow), trypema.WithBucketSize(demoBucket), trypema.WithHardLimitFactor(demoHardLimit),
	}
	// A prefix of its own keeps the demo off other keys of a shared Redis,
	// and one per provider keeps the redis and hybrid providers apart.
	prefix := fmt.Sprintf("trypema_demo_%d", os.Getpid())

	mux := http.NewServeMux()
	var scenarios []*scenario
	defer func() {
		for _, s := range scenarios {
			_ = s.lim.Clear(ctx) // only a shared Redis keeps anything
			_ = s.lim.Close()
		}
	}()
	providers := demoProviders(pool, redisAbout)
	for _, p := range providers {
		for _, strategy := range []string{"absolute", "suppressed"} {
			build := p.absolute
			if strategy == "suppressed" {
				build = p.suppressed
			}
			lim, err := build(append(opts, trypema.WithPrefix(prefix+"_"+p.name))...)
			if err != nil {
				return fmt.Errorf("%s %s limiter: %w", p.name, strategy, err)
			}
			s := &scenario{provider: p.name, strategy: strategy, path: "/" + p.name + "/" + strategy, lim: lim}
			scenarios = append(scenarios, s)
			for range demoClients {
				s.stats = append(s.stats, &clientStats{})
			}
			mw, err := httplimit.New(lim, rate, httplimit.WithWindow(demoWindow),
				httplimit.WithKey(httplimit.KeyByHeader(demoClientHdr)), httplimit.WithFailureMode(httplimit.FailClosed))
			if err != nil {
				return err
			}
			mux.Handle(s.path, mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "ok\n")
			})))
		}
	}

	mux.HandleFunc("/warmup", func(http.ResponseWriter, *http.Request) {})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	fmt.Fprintf(w, "Trypema demo: real HTTP requests to %s, each behind the httplimit middleware, for %v\n", base, duration)
	fmt.Fprintf(w, "  policy   %g requests/s per client over a %v window (buckets of %v): capacity %d; suppressed: hard-limit factor %g (hard cap %d)\n",
		demoLimit, demoWindow, demoBucket, capacity, demoHardLimit, hard)
	var names []string
	for _, c := range demoClients {
		n := fmt.Sprintf("%s %g/s", c.name, c.rate)
		if c.abusive {
			n += " (abusive)"
		}
		names = append(names, n)
	}
	fmt.Fprintf(w, "  clients  %s; keyed by the %s header\n", strings.Join(names, ", "), demoClientHdr)
	for _, p := range providers {
		fmt.Fprintf(w, "  %-8s %s\n", p.name, p.about)
	}
	if note != "" {
		fmt.Fprintf(w, "  %s\n", note)
	}
	fmt.Fprintln(w)

	transport := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	// Open the connections before the clock starts, so that the latencies
	// measure the middleware and the limiters, not TCP handshakes.
	warmup(hc, base+"/warmup", pool)

	var prog progress
	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	for _, s := range scenarios {
		for i, c := range demoClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				drive(hc, base+s.path, c, i, start, end, s.stats[i], &prog, &wg)
			}()
		}
	}
	showProgress(w, start, end, &prog, &wg)

	elapsed := duration
	for _, s := range scenarios {
		printScenario(w, s, elapsed, capacity, hard)
	}
	if note != "" {
		fmt.Fprintf(w, "%s\n", note)
	}
	return nil
}

// warmup opens idle HTTP connections to the server and Redis connections
// in the pool (when there is one).
func warmup(hc *http.Client, url string, pool *redis.Pool) {
	const conns = 32
	var wg sync.WaitGroup
	var hold sync.WaitGroup
	hold.Add(1)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := hc.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if pool != nil {
				c := pool.Get()
				_, _ = c.Do("PING")
				hold.Wait() // keep it until every goroutine has one
				c.Close()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	hold.Done()
	wg.Wait()
}

// drive sends c's requests to url, evenly spaced from start (offset by
// the client's index so that clients do not fire in lockstep) until end.
// Each request runs in its own goroutine, so a slow answer never delays
// the next request: the offered rate is the rate asked for.
func drive(hc *http.Client, url string, c demoClient, idx int, start, end time.Time, st *clientStats, prog *progress, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / c.rate)
	offset := time.Duration(idx+1) * interval / time.Duration(len(demoClients)+1)
	for i := 0; ; i++ {
		at := start.Add(offset + time.Duration(i)*interval)
		if !at.Before(end) {
			return
		}
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(hc, url, c.name, at.Sub(start) >= demoWindow, st, prog)
		}()
	}
}

func send(hc *http.Client, url, client string, steady bool, st *clientStats, prog *progress) {
	prog.sent.Add(1)
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return
	}
	req.Header.Set(demoClientHdr, client)
	t0 := time.Now()
	resp, err := hc.Do(req)
	var status int
	var limitHdr string
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status, limitHdr = resp.StatusCode, resp.Header.Get(httplimit.HeaderRateLimit)
	}
	lat := time.Since(t0)
	suppressed := strings.Contains(limitHdr, "trypema-factor=")

	st.mu.Lock()
	defer st.mu.Unlock()
	st.sent++
	if steady {
		st.steadySent++
	}
	admitted := false
	switch {
	case status == http.StatusOK && suppressed:
		st.supAdmitted++
		admitted = true
	case status == http.StatusOK:
		st.allowed++
		admitted = true
	case status == http.StatusTooManyRequests && suppressed:
		st.supDenied++
	case status == http.StatusTooManyRequests:
		st.rejected++
	default:
		st.failed++
		prog.failed.Add(1)
		return
	}
	st.latency = append(st.latency, lat)
	if admitted {
		prog.admitted.Add(1)
		if steady {
			st.steadyAdm++
		}
	} else {
		prog.refused.Add(1)
	}
}

// showProgress prints a live line until end, then waits for the answers
// still in flight. On a terminal the line is redrawn in place; elsewhere
// (a pipe, a test) a line is printed every few seconds.
func showProgress(w io.Writer, start, end time.Time, prog *progress, wg *sync.WaitGroup) {
	tty := isTerminal(w)
	every := 3 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	line := func() string {
		el := min(time.Since(start), end.Sub(start)).Truncate(100 * time.Millisecond)
		return fmt.Sprintf("  %5.1fs / %v  sent %d  admitted %d  refused (429) %d  failed %d",
			el.Seconds(), end.Sub(start), prog.sent.Load(), prog.admitted.Load(), prog.refused.Load(), prog.failed.Load())
	}
	t := time.NewTicker(every)
	defer t.Stop()
	done := time.NewTimer(time.Until(end))
	defer done.Stop()
wait:
	for {
		select {
		case <-done.C:
			break wait
		case <-t.C:
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line())
			} else {
				fmt.Fprintln(w, line())
			}
		}
	}
	wg.Wait()
	if tty {
		fmt.Fprintf(w, "\r\033[K")
	}
	fmt.Fprintf(w, "%s  (done)\n\n", line())
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printScenario(w io.Writer, s *scenario, elapsed time.Duration, capacity, hard int64) {
	limit := fmt.Sprintf("limit %g/s: at most %d per %v window", demoLimit, capacity, demoWindow)
	if s.strategy == "suppressed" {
		limit = fmt.Sprintf("target %g/s: soft cap %d, hard cap %d per %v window", demoLimit, capacity, hard, demoWindow)
	}
	fmt.Fprintf(w, "%s / %s  (%s)\n", s.provider, s.strategy, limit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := 0
	for _, c := range demoClients {
		width = max(width, len(c.name)+len(" (abusive)"))
	}
	fmt.Fprintf(tw, "  %-*s\toffered/s\tadmitted/s\tsteady/s\trejected\tsuppressed adm/den\tfailed\tp50\tp99\t\n", width, "client")
	steadySecs := (elapsed - demoWindow).Seconds()
	var verdict []string
	othersRefused, othersSent := 0, 0
	for i, c := range demoClients {
		st := s.stats[i]
		st.mu.Lock()
		name := c.name
		if c.abusive {
			name += " (abusive)"
		}
		admitted := st.allowed + st.supAdmitted
		steady := "-"
		if steadySecs >= 1 {
			steady = fmt.Sprintf("%.1f", float64(st.steadyAdm)/steadySecs)
		}
		rejected, suppressed := fmt.Sprint(st.rejected), fmt.Sprintf("%d/%d", st.supAdmitted, st.supDenied)
		if s.strategy == "absolute" {
			suppressed = "-"
		} else {
			rejected = "-"
		}
		p50, p99 := percentile(st.latency, 0.50), percentile(st.latency, 0.99)
		fmt.Fprintf(tw, "  %-*s\t%.1f\t%.1f\t%s\t%s\t%s\t%d\t%s\t%s\t\n", width, name,
			float64(st.sent)/elapsed.Seconds(), float64(admitted)/elapsed.Seconds(), steady,
			rejected, suppressed, st.failed, p50, p99)
		if c.abusive && steadySecs >= 1 {
			got := float64(st.steadyAdm) / steadySecs
			v := fmt.Sprintf("%s offered %.0f/s, admitted %.1f/s after the first window (%+.0f%% of %g/s",
				c.name, float64(st.sent)/elapsed.Seconds(), got, 100*(got/demoLimit-1), demoLimit)
			if s.strategy == "suppressed" && st.steadySent > 0 {
				// Admissions are draws: over n calls with probability p the
				// admitted count varies by sqrt(n p (1 − p)).
				p := min(1, demoLimit*steadySecs/float64(st.steadySent))
				v += fmt.Sprintf("; the draws alone vary by ±%.1f/s, 1σ", math.Sqrt(float64(st.steadySent)*p*(1-p))/steadySecs)
			}
			verdict = append(verdict, v+")")
		}
		if !c.abusive {
			othersRefused += st.rejected + st.supDenied + st.failed
			othersSent += st.sent
		}
		st.mu.Unlock()
	}
	tw.Flush()
	if othersRefused == 0 {
		verdict = append(verdict, fmt.Sprintf("the others: all %d requests admitted", othersSent))
	} else {
		verdict = append(verdict, fmt.Sprintf("the others: %d of %d requests refused or failed", othersRefused, othersSent))
	}
	fmt.Fprintf(w, "  → %s\n\n", strings.Join(verdict, "; "))
}

// percentile returns the p-quantile of ds (nearest rank), formatted.
func percentile(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, max(0, int(p*float64(len(s))+0.5)-1))
	d := s[i]
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}
