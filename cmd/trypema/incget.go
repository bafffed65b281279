package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
)

// limiterFlags are the flags that build a Redis limiter.
type limiterFlags struct {
	redisFlags
	strategy  string
	window    time.Duration
	bucket    time.Duration
	hardLimit float64
	json      bool
}

func (f *limiterFlags) register(fs *flag.FlagSet) {
	f.bucket, f.hardLimit = trypema.DefaultBucketSize, trypema.DefaultHardLimit // inc has flags for them
	f.redisFlags.register(fs)
	fs.StringVar(&f.strategy, "strategy", "absolute", "absolute (abs) or suppressed (sup)")
	fs.DurationVar(&f.window, "window", trypema.DefaultWindow, "sliding window, as the application's limiter uses it")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of key=value pairs")
}

func (f *limiterFlags) options() []trypema.Option {
	return []trypema.Option{
		trypema.WithPrefix(f.prefix), trypema.WithWindow(f.window),
		trypema.WithBucketSize(f.bucket), trypema.WithHardLimitFactor(f.hardLimit),
	}
}

// open checks the flags and returns a limiter over a checked connection;
// on failure it reports the error and returns the exit code.
func (f *limiterFlags) open(c string, stderr io.Writer) (trypema.Limiter, *redis.Pool, int) {
	s, ok := strategyName(f.strategy)
	if !ok {
		return nil, nil, usageErr(stderr, c, "-strategy %q: use absolute or suppressed", f.strategy)
	}
	if _, err := trypema.NewConfig(f.options()...); err != nil {
		return nil, nil, failure(stderr, c, err)
	}
	pool, err := f.connect(context.Background())
	if err != nil {
		return nil, nil, failure(stderr, c, err)
	}
	var lim trypema.Limiter
	if s == "abs" {
		lim, err = client.NewAbsolute(pool, f.options()...)
	} else {
		lim, err = client.NewSuppressed(pool, f.options()...)
	}
	if err != nil {
		pool.Close()
		return nil, nil, failure(stderr, c, err)
	}
	return lim, pool, 0
}

// oneKey checks that pos is exactly one valid key.
// parseKey parses args for a command that takes exactly one KEY.
func (c *command) parseKey(args []string, stdout, stderr io.Writer) (string, int, bool) {
	pos, code, ok := c.parse(c.flagSet(), args, stdout, stderr)
	if !ok {
		return "", code, false
	}
	return oneKey(c.name, pos, stderr)
}

func oneKey(c string, pos []string, stderr io.Writer) (string, int, bool) {
	if len(pos) != 1 {
		return "", usageErr(stderr, c, "want exactly one KEY, got %d arguments", len(pos)), false
	}
	if err := trypema.ValidateKey(pos[0]); err != nil {
		return "", failure(stderr, c, err), false
	}
	return pos[0], 0, true
}

func incCommand() *command {
	var lf limiterFlags
	rate := rateValue{}
	var n int64
	c := &command{
		name:    "inc",
		summary: "inc [flags] -rate RATE KEY",
		doc: `Ask a Redis limiter for -n units of KEY at -rate, exactly as an
application's limiter with the same flags would, and print the decision as
key=value pairs (or JSON with -json). The exit code says whether to proceed:
0 admitted, 3 not admitted (rejected, or denied by suppression), 1 Redis
failed, 2 bad arguments. For example:

  if trypema inc -rate 10/min "backup_$HOST" >/dev/null; then run_backup; fi
`,
		flags: func(fs *flag.FlagSet) {
			lf.register(fs)
			fs.Var(&rate, "rate", "rate for a key without state (sticky afterwards): N/s, N/min, N/h, N/day, N/week, N/month")
			fs.Int64Var(&n, "n", 1, "units this call consumes")
			fs.DurationVar(&lf.bucket, "bucket", trypema.DefaultBucketSize, "bucket (coalescing) size")
			fs.Float64Var(&lf.hardLimit, "hard-limit", trypema.DefaultHardLimit, "suppressed: hard-limit factor (≥ 1)")
		},
	}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		key, code, ok := c.parseKey(args, stdout, stderr)
		if !ok {
			return code
		}
		if rate.text == "" {
			return usageErr(stderr, c.name, "-rate is required, for example -rate 10/s")
		}
		if err := trypema.ValidateCount(n); err != nil {
			return failure(stderr, c.name, err)
		}
		lim, pool, code := lf.open(c.name, stderr)
		if lim == nil {
			return code
		}
		defer pool.Close()
		d, err := lim.Inc(context.Background(), key, rate.rate, n)
		if err != nil {
			return failure(stderr, c.name, err)
		}
		printDecision(stdout, d, lf.json)
		if !d.Admitted {
			return exitRefused
		}
		return exitOK
	}
	return c
}

func printDecision(w io.Writer, d trypema.Decision, asJSON bool) {
	type out struct {
		Outcome               string   `json:"outcome"`
		Admitted              bool     `json:"admitted"`
		Limit                 int64    `json:"limit"`
		Remaining             int64    `json:"remaining"`
		RetryAfterMs          *int64   `json:"retry_after_ms,omitempty"`
		RemainingAfterWaiting *int64   `json:"remaining_after_waiting,omitempty"`
		Factor                *float64 `json:"factor,omitempty"`
	}
	o := out{Outcome: d.Outcome.String(), Admitted: d.Admitted, Limit: d.Limit, Remaining: d.Remaining}
	line := fmt.Sprintf("outcome=%s admitted=%t limit=%d remaining=%d", o.Outcome, o.Admitted, o.Limit, o.Remaining)
	switch d.Outcome {
	case trypema.Rejected:
		ms := d.RetryAfter.Milliseconds()
		o.RetryAfterMs, o.RemainingAfterWaiting = &ms, &d.RemainingAfterWaiting
		line += fmt.Sprintf(" retry_after_ms=%d remaining_after_waiting=%d", ms, d.RemainingAfterWaiting)
	case trypema.Suppressed:
		o.Factor = &d.SuppressionFactor
		line += " factor=" + strconv.FormatFloat(d.SuppressionFactor, 'g', -1, 64)
	}
	if asJSON {
		b, _ := json.Marshal(o)
		line = string(b)
	}
	fmt.Fprintln(w, line)
}

func getCommand() *command {
	var lf limiterFlags
	c := &command{
		name:    "get",
		summary: "get [flags] KEY",
		doc: `Print a key's live state in Redis as key=value pairs (or JSON with
-json): whether it exists, its live total, declined and accepted units, its
limit and hard cap, its sticky rate in units per second, and the suppression
factor. Nothing is written. An unknown key prints exists=false.
`,
		flags: func(fs *flag.FlagSet) { lf.register(fs) },
	}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		key, code, ok := c.parseKey(args, stdout, stderr)
		if !ok {
			return code
		}
		lim, pool, code := lf.open(c.name, stderr)
		if lim == nil {
			return code
		}
		defer pool.Close()
		s, err := lim.Get(context.Background(), key)
		if err != nil {
			return failure(stderr, c.name, err)
		}
		if lf.json {
			b, _ := json.Marshal(map[string]any{
				"exists": s.Exists, "total": s.Total, "declined": s.Declined, "accepted": s.Accepted(),
				"limit": s.Limit, "hard_limit": s.HardLimit, "rate": float64(s.Rate), "factor": s.SuppressionFactor,
			})
			fmt.Fprintln(stdout, string(b))
			return exitOK
		}
		fmt.Fprintf(stdout, "exists=%t total=%d declined=%d accepted=%d limit=%d hard_limit=%d rate=%s factor=%s\n",
			s.Exists, s.Total, s.Declined, s.Accepted(), s.Limit, s.HardLimit,
			strconv.FormatFloat(float64(s.Rate), 'g', -1, 64), strconv.FormatFloat(s.SuppressionFactor, 'g', -1, 64))
		return exitOK
	}
	return c
}
