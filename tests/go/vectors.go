// Package conformance plays the conformance vectors of tests/lua/vectors
// against every home of the algorithm (the Lua scripts in a real Redis,
// localcache, and later hybrid) and fails on any difference.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/trypema-go/trypema"
)

// Vector is one conformance vector: a configuration and a timed sequence
// of operations on one or more keys, with the results they must give.
type Vector struct {
	Name            string  `json:"name"`
	Description     string  `json:"description"`
	Strategy        string  `json:"strategy"` // absolute | suppressed
	WindowMs        int64   `json:"window_ms"`
	BucketMs        int64   `json:"bucket_ms"`
	HardLimitFactor float64 `json:"hard_limit_factor"`
	FactorCacheMs   int64   `json:"factor_cache_ms"`
	Steps           []Step  `json:"steps"`
	file            string
}

// Step is one operation. Op is inc | is_allowed | factor | get |
// set_rate_limit | set_if | delete. At is the time in Unix milliseconds
// (the scripts' now_ms); U is the uniform draw of a suppressed inc.
type Step struct {
	Op   string         `json:"op"`
	Key  string         `json:"key"`
	At   int64          `json:"at"`
	Rate float64        `json:"rate,omitempty"`
	N    int64          `json:"n,omitempty"`
	U    float64        `json:"u,omitempty"`
	Cmp  string         `json:"cmp,omitempty"`
	Mode string         `json:"mode,omitempty"`
	Want map[string]any `json:"want"`
}

// Result is what a step gave, as field name → value with JSON's types
// (numbers float64, booleans bool, strings string), so that it compares
// directly with a Step's Want.
type Result map[string]any

// LoadVectors reads every *.json file of dir.
func LoadVectors(dir string) ([]Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Vector
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var vs []Vector
		if err := json.Unmarshal(raw, &vs); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i := range vs {
			vs[i].file = filepath.Base(f)
			if err := vs[i].validate(); err != nil {
				return nil, fmt.Errorf("%s: vector %q: %w", f, vs[i].Name, err)
			}
		}
		out = append(out, vs...)
	}
	return out, nil
}

func (v *Vector) validate() error {
	if v.Name == "" || (v.Strategy != "absolute" && v.Strategy != "suppressed") || len(v.Steps) == 0 {
		return errors.New("needs a name, a strategy (absolute or suppressed) and steps")
	}
	for i, s := range v.Steps {
		if len(s.Want) == 0 {
			return fmt.Errorf("step %d (%s) has no want", i, s.Op)
		}
		if _, ok := opNames[s.Op]; !ok {
			return fmt.Errorf("step %d: unknown op %q", i, s.Op)
		}
	}
	return nil
}

var opNames = map[string]bool{"inc": true, "is_allowed": true, "factor": true, "get": true,
	"set_rate_limit": true, "set_if": true, "delete": true}

// Options returns the limiter options of v, driven by clk and the draw *u.
func (v *Vector) Options(clk trypema.Clock, u *float64) []trypema.Option {
	opts := []trypema.Option{trypema.WithClock(clk), trypema.WithRandom(func() float64 { return *u })}
	if v.WindowMs != 0 {
		opts = append(opts, trypema.WithWindow(time.Duration(v.WindowMs)*time.Millisecond))
	}
	if v.BucketMs != 0 {
		opts = append(opts, trypema.WithBucketSize(time.Duration(v.BucketMs)*time.Millisecond))
	}
	if v.HardLimitFactor != 0 {
		opts = append(opts, trypema.WithHardLimitFactor(v.HardLimitFactor))
	}
	if v.FactorCacheMs != 0 {
		opts = append(opts, trypema.WithFactorCacheTTL(time.Duration(v.FactorCacheMs)*time.Millisecond))
	}
	return opts
}

// errorCodes names the error kinds a step can expect ("error": "<code>").
var errorCodes = []struct {
	code string
	err  error
}{
	{"zero_capacity", trypema.ErrZeroCapacity},
	{"count_exceeds_capacity", trypema.ErrCountExceedsCapacity},
	{"invalid_rate", trypema.ErrInvalidRate},
	{"invalid_count", trypema.ErrInvalidCount},
	{"invalid_key", trypema.ErrInvalidKey},
	{"invalid_arg", trypema.ErrInvalidArg},
}

func errorResult(err error) Result {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return Result{"error": c.code}
		}
	}
	return Result{"error": "unexpected: " + err.Error()}
}

var comparators = map[string]trypema.Comparator{"always": trypema.Always, "eq": trypema.Eq, "ne": trypema.Ne,
	"lt": trypema.Lt, "le": trypema.Le, "gt": trypema.Gt, "ge": trypema.Ge}

var modes = map[string]trypema.HistoryMode{"replace": trypema.Replace, "preserve_newest": trypema.PreserveNewest,
	"preserve_oldest": trypema.PreserveOldest}

// Play runs one step on l (an AbsoluteLimiter or SuppressedLimiter) and
// returns its result. The caller has set the clock to s.At and the draw to
// s.U.
func Play(ctx context.Context, l trypema.Limiter, s Step) Result {
	r, err := play(ctx, l, s)
	if err != nil {
		return errorResult(err)
	}
	return r
}

func play(ctx context.Context, l trypema.Limiter, s Step) (Result, error) {
	rate := trypema.Rate(s.Rate)
	switch s.Op {
	case "inc":
		d, err := l.Inc(ctx, s.Key, rate, s.N)
		return decision(d), err
	case "is_allowed":
		a, ok := l.(trypema.AbsoluteLimiter)
		if !ok {
			return nil, fmt.Errorf("is_allowed on a %T", l)
		}
		d, err := a.IsAllowed(ctx, s.Key)
		return decision(d), err
	case "factor":
		sl, ok := l.(trypema.SuppressedLimiter)
		if !ok {
			return nil, fmt.Errorf("factor on a %T", l)
		}
		f, err := sl.SuppressionFactor(ctx, s.Key)
		return Result{"factor": f}, err
	case "get":
		g, err := l.Get(ctx, s.Key)
		return Result{"exists": g.Exists, "total": float64(g.Total), "declined": float64(g.Declined),
			"limit": float64(g.Limit), "hard": float64(g.HardLimit), "rate": float64(g.Rate), "factor": g.SuppressionFactor}, err
	case "set_rate_limit":
		prev, existed, err := l.SetRateLimit(ctx, s.Key, rate)
		return Result{"existed": existed, "previous_rate": float64(prev)}, err
	case "set_if":
		cmp, ok := comparators[s.Cmp]
		if !ok {
			cmp = trypema.Comparator(200) // an invalid comparator, on purpose
		}
		mode, ok := modes[s.Mode]
		if !ok {
			mode = trypema.HistoryMode(200)
		}
		r, err := l.SetIf(ctx, s.Key, rate, cmp, s.N, mode)
		return Result{"matched": r.Matched, "previous": float64(r.Previous), "current": float64(r.Current)}, err
	case "delete":
		u, existed, err := l.Delete(ctx, s.Key)
		return Result{"existed": existed, "usage": float64(u)}, err
	}
	return nil, fmt.Errorf("unknown op %q", s.Op)
}

func decision(d trypema.Decision) Result {
	return Result{"outcome": d.Outcome.String(), "admitted": d.Admitted, "limit": float64(d.Limit),
		"remaining": float64(d.Remaining), "retry_after_ms": float64(d.RetryAfter.Milliseconds()),
		"remaining_after_waiting": float64(d.RemainingAfterWaiting), "factor": d.SuppressionFactor}
}

// Mismatches lists the fields of want that got does not match.
func Mismatches(want map[string]any, got Result) []string {
	var out []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok || g != want[k] {
			out = append(out, fmt.Sprintf("%s = %v, want %v", k, g, want[k]))
		}
	}
	return out
}
