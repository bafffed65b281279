package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
)

var (
	_ trypema.AbsoluteLimiter   = (*Absolute)(nil)
	_ trypema.SuppressedLimiter = (*Suppressed)(nil)
)

// Key-name pieces of schema v1 (lua/README.md): P:v1:S:{K}:buckets and :meta.
const (
	schema             = "v1"
	strategyAbsolute   = "abs"
	strategySuppressed = "sup"
)

// Keys returns the two Redis keys (buckets, meta) that hold a limited key's
// state, for callers that run the scripts themselves. strategy is "abs" or
// "sup". The arguments must be valid (trypema.ValidatePrefix, ValidateKey).
func Keys(prefix, strategy, key string) [2]string {
	base := prefix + ":" + schema + ":" + strategy + ":{" + key + "}:"
	return [2]string{base + "buckets", base + "meta"}
}

// base is what both strategies share: configuration, the scripts and the
// failure policy.
type base struct {
	cfg      trypema.Config
	pool     *redis.Pool
	scripts  *Scripts
	strategy string
	random   func() float64
	closed   atomic.Bool
}

func newBase(pool *redis.Pool, strategy string, opts []trypema.Option, sopts []ScriptsOption) (*base, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: the Redis pool is nil; pass a *redis.Pool (github.com/gomodule/redigo/redis)", trypema.ErrInvalidArg)
	}
	cfg, err := trypema.NewConfig(opts...)
	if err != nil {
		return nil, err
	}
	b := &base{cfg: cfg, pool: pool, scripts: NewScripts(pool, sopts...), strategy: strategy, random: cfg.Random}
	if b.random == nil {
		b.random = rand.Float64
	}
	return b, nil
}

func (b *base) keys(key string) [2]string { return Keys(b.cfg.Prefix, b.strategy, key) }

// now is the scripts' now_ms: the configured clock, or the server's TIME.
func (b *base) now() Opt[int64] {
	if b.cfg.Clock == nil {
		return Opt[int64]{}
	}
	return Some(b.cfg.Clock.NowMs())
}

// open reports err, or ErrClosed once the limiter is closed.
func (b *base) open(err error) error {
	if err == nil && b.closed.Load() {
		return trypema.ErrClosed
	}
	return err
}

func (b *base) checkKey(key string) error { return b.open(trypema.ValidateKey(key)) }

func (b *base) checkInc(key string, r trypema.Rate, n int64) error {
	return b.open(trypema.ValidateInc(key, r, n))
}

// decide applies the failure policy to a decision that failed because
// Redis could not be reached. Other errors (bad input) are returned as they
// are.
func (b *base) decide(d trypema.Decision, err error) (trypema.Decision, error) {
	if err == nil || !errors.Is(err, trypema.ErrRedisUnavailable) {
		return d, err
	}
	switch b.cfg.FailurePolicy {
	case trypema.FailOpen:
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Degraded: true}, nil
	case trypema.FailClosed:
		return trypema.Decision{Outcome: trypema.Rejected, Degraded: true}, nil
	}
	return trypema.Decision{}, err
}

// hardLimitFactor is the factor the caps of this strategy use.
func (b *base) hardLimitFactor() float64 {
	if b.strategy == strategyAbsolute {
		return 1
	}
	return b.cfg.HardLimitFactor
}

func (b *base) setRateLimit(ctx context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	if err := b.checkInc(key, rate, 1); err != nil {
		return 0, false, err
	}
	r, err := b.scripts.SetRateLimit(ctx, b.keys(key), SetRateLimitArgs{
		WindowMs: b.cfg.WindowMs(), HardLimitFactor: b.hardLimitFactor(), Rate: float64(rate), NowMs: b.now(),
	})
	if err != nil {
		return 0, false, err
	}
	return trypema.Rate(r.PreviousRate), r.Existed == 1, nil
}

func (b *base) setIf(ctx context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	if err := b.open(trypema.ValidateSetIf(key, rate, cmp, n, mode)); err != nil {
		return trypema.SetResult{}, err
	}
	r, err := b.scripts.SetIf(ctx, b.keys(key), SetIfArgs{
		WindowMs: b.cfg.WindowMs(), HardLimitFactor: b.hardLimitFactor(), Rate: float64(rate),
		Comparator: cmp.String(), N: n, Mode: mode.String(), NowMs: b.now(),
	})
	if err != nil {
		return trypema.SetResult{}, err
	}
	return trypema.SetResult{Matched: r.Matched == 1, Previous: r.Previous, Current: r.Current}, nil
}

func (b *base) delete(ctx context.Context, key, usage string) (int64, bool, error) {
	if err := b.checkKey(key); err != nil {
		return 0, false, err
	}
	r, err := b.scripts.Delete(ctx, b.keys(key), DeleteArgs{WindowMs: b.cfg.WindowMs(), Usage: usage, NowMs: b.now()})
	if err != nil {
		return 0, false, err
	}
	return r.Usage, r.Existed == 1, nil
}

// clearBatch bounds both SCAN's COUNT hint and UNLINK's arguments.
const clearBatch = 1000

// clear removes every key of this prefix and strategy with SCAN and UNLINK,
// in batches of at most 1,000 keys. Keys of other prefixes or strategies
// never match the pattern.
func (b *base) clear(ctx context.Context) error {
	if b.closed.Load() {
		return trypema.ErrClosed
	}
	c, err := b.pool.GetContext(ctx)
	if err != nil {
		return unavailableErr("clear", err)
	}
	defer c.Close()
	pattern := b.cfg.Prefix + ":" + schema + ":" + b.strategy + ":{*}:*"
	cursor := "0"
	for {
		v, err := redis.Values(redis.DoContext(c, ctx, "SCAN", cursor, "MATCH", pattern, "COUNT", clearBatch))
		if err != nil {
			return unavailableErr("clear", err)
		}
		if len(v) != 2 {
			return fmt.Errorf("%w: SCAN answered %d elements, want 2", trypema.ErrUnexpectedReply, len(v))
		}
		if cursor, err = redis.String(v[0], nil); err != nil {
			return fmt.Errorf("%w: SCAN cursor: %v", trypema.ErrUnexpectedReply, err)
		}
		keys, err := redis.Values(v[1], nil)
		if err != nil {
			return fmt.Errorf("%w: SCAN keys: %v", trypema.ErrUnexpectedReply, err)
		}
		for len(keys) > 0 {
			batch := keys[:min(len(keys), clearBatch)]
			keys = keys[len(batch):]
			if _, err := redis.DoContext(c, ctx, "UNLINK", batch...); err != nil {
				return unavailableErr("clear", err)
			}
		}
		if cursor == "0" {
			return nil
		}
	}
}

func unavailableErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", trypema.ErrRedisUnavailable, op, err)
}

// Close marks the limiter closed; later calls return trypema.ErrClosed.
// The pool belongs to the caller and stays open.
func (b *base) Close() error {
	b.closed.Store(true)
	return nil
}

// Absolute is the Redis provider's limiter of the absolute strategy: every
// decision is one atomic script call, so any number of processes share
// exact limits.
type Absolute struct{ *base }

// NewAbsolute returns an absolute limiter over pool, configured by opts
// (window, bucket size, prefix, failure policy, clock; see trypema.Option).
// Without WithClock the scripts use the Redis server's clock.
func NewAbsolute(pool *redis.Pool, opts ...trypema.Option) (*Absolute, error) {
	return NewAbsoluteWith(pool, opts, nil)
}

// NewAbsoluteWith is NewAbsolute with options for how scripts are run
// (WithEvalRO, WithFunctions).
func NewAbsoluteWith(pool *redis.Pool, opts []trypema.Option, sopts []ScriptsOption) (*Absolute, error) {
	b, err := newBase(pool, strategyAbsolute, opts, sopts)
	if err != nil {
		return nil, err
	}
	return &Absolute{b}, nil
}

// Inc admits n units of key iff they fit in the key's capacity now, and
// records them; otherwise it records nothing and says when to retry. When
// Redis cannot be reached the failure policy decides.
func (l *Absolute) Inc(ctx context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	r, err := l.scripts.AbsoluteInc(ctx, l.keys(key), AbsoluteIncArgs{
		WindowMs: l.cfg.WindowMs(), BucketMs: l.cfg.BucketMs(), Rate: float64(rate), N: n, NowMs: l.now(),
	})
	if err != nil {
		return l.decide(trypema.Decision{}, err)
	}
	return absoluteDecision(AbsoluteIsAllowedReply(r)), nil
}

// absoluteDecision converts the reply shared by absolute_inc and
// absolute_is_allowed.
func absoluteDecision(r AbsoluteIsAllowedReply) trypema.Decision {
	d := trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: r.Limit, Remaining: r.Remaining}
	if r.Outcome == "rejected" {
		d = trypema.Decision{Outcome: trypema.Rejected, Limit: r.Limit, Remaining: r.Remaining,
			RetryAfter: time.Duration(r.RetryAfterMs) * time.Millisecond, RemainingAfterWaiting: r.RemainingAfterWaiting}
	}
	return d
}

// IsAllowed reports, without recording anything, whether one unit of key
// would be admitted now.
func (l *Absolute) IsAllowed(ctx context.Context, key string) (trypema.Decision, error) {
	if err := l.checkKey(key); err != nil {
		return trypema.Decision{}, err
	}
	r, err := l.scripts.AbsoluteIsAllowed(ctx, l.keys(key), AbsoluteIsAllowedArgs{WindowMs: l.cfg.WindowMs(), NowMs: l.now()})
	if err != nil {
		return l.decide(trypema.Decision{}, err)
	}
	return absoluteDecision(r), nil
}

// Get returns key's live state; an unknown key gives the zero Snapshot.
func (l *Absolute) Get(ctx context.Context, key string) (trypema.Snapshot, error) {
	if err := l.checkKey(key); err != nil {
		return trypema.Snapshot{}, err
	}
	r, err := l.scripts.AbsoluteGet(ctx, l.keys(key), AbsoluteGetArgs{WindowMs: l.cfg.WindowMs(), NowMs: l.now()})
	if err != nil {
		return trypema.Snapshot{}, err
	}
	return snapshot(SuppressedGetReply(r)), nil
}

func snapshot(r SuppressedGetReply) trypema.Snapshot {
	if r.Exists == 0 {
		return trypema.Snapshot{}
	}
	return trypema.Snapshot{Exists: true, Total: r.Total, Declined: r.Declined, Limit: r.Limit, HardLimit: r.Hard,
		Rate: trypema.Rate(r.Rate), SuppressionFactor: r.Factor}
}

// SetRateLimit replaces the rate of a live key and keeps its history.
func (l *Absolute) SetRateLimit(ctx context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	return l.setRateLimit(ctx, key, rate)
}

// SetIf sets key's live total to n (and its rate to rate) iff
// cmp.Match(total, n); see trypema.Limiter.
func (l *Absolute) SetIf(ctx context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	return l.setIf(ctx, key, rate, cmp, n, mode)
}

// Delete removes key and returns its live total before deletion.
func (l *Absolute) Delete(ctx context.Context, key string) (int64, bool, error) {
	return l.delete(ctx, key, "total")
}

// Clear removes every key of this prefix and strategy.
func (l *Absolute) Clear(ctx context.Context) error { return l.clear(ctx) }

// Suppressed is the Redis provider's limiter of the suppressed strategy.
type Suppressed struct{ *base }

// NewSuppressed returns a suppressed limiter over pool, configured by opts
// (window, bucket size, hard-limit factor, factor cache TTL, prefix,
// failure policy, clock, random draws; see trypema.Option).
func NewSuppressed(pool *redis.Pool, opts ...trypema.Option) (*Suppressed, error) {
	return NewSuppressedWith(pool, opts, nil)
}

// NewSuppressedWith is NewSuppressed with options for how scripts are run.
func NewSuppressedWith(pool *redis.Pool, opts []trypema.Option, sopts []ScriptsOption) (*Suppressed, error) {
	b, err := newBase(pool, strategySuppressed, opts, sopts)
	if err != nil {
		return nil, err
	}
	return &Suppressed{b}, nil
}

// Inc records n units of key and decides: admitted up to the soft cap,
// never above the hard cap, in between with probability 1 − factor. The
// uniform draw is made here and sent to the script.
func (l *Suppressed) Inc(ctx context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	r, err := l.scripts.SuppressedInc(ctx, l.keys(key), SuppressedIncArgs{
		WindowMs: l.cfg.WindowMs(), BucketMs: l.cfg.BucketMs(), HardLimitFactor: l.cfg.HardLimitFactor,
		FactorCacheMs: l.cfg.FactorCacheMs(), Rate: float64(rate), N: n, U: Some(l.random()), NowMs: l.now(),
	})
	if err != nil {
		return l.decide(trypema.Decision{}, err)
	}
	if r.Outcome == "allowed" {
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: r.Limit, Remaining: r.Remaining}, nil
	}
	return trypema.Decision{Outcome: trypema.Suppressed, Admitted: r.Admitted == 1, Limit: r.Limit,
		Remaining: r.Remaining, SuppressionFactor: r.Factor}, nil
}

// SuppressionFactor returns key's current factor without recording anything.
func (l *Suppressed) SuppressionFactor(ctx context.Context, key string) (float64, error) {
	if err := l.checkKey(key); err != nil {
		return 0, err
	}
	r, err := l.scripts.SuppressedFactor(ctx, l.keys(key), SuppressedFactorArgs{
		WindowMs: l.cfg.WindowMs(), FactorCacheMs: l.cfg.FactorCacheMs(), NowMs: l.now(),
	})
	return r.Factor, err
}

// Get returns key's live state; an unknown key gives the zero Snapshot.
func (l *Suppressed) Get(ctx context.Context, key string) (trypema.Snapshot, error) {
	if err := l.checkKey(key); err != nil {
		return trypema.Snapshot{}, err
	}
	r, err := l.scripts.SuppressedGet(ctx, l.keys(key), SuppressedGetArgs{
		WindowMs: l.cfg.WindowMs(), FactorCacheMs: l.cfg.FactorCacheMs(), NowMs: l.now(),
	})
	if err != nil {
		return trypema.Snapshot{}, err
	}
	return snapshot(r), nil
}

// SetRateLimit replaces the rate of a live key and keeps its history.
func (l *Suppressed) SetRateLimit(ctx context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	return l.setRateLimit(ctx, key, rate)
}

// SetIf sets key's live total to n (and its rate to rate) iff
// cmp.Match(total, n); lowering keeps floor(declined × kept / count) of
// each thinned bucket's declines.
func (l *Suppressed) SetIf(ctx context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	return l.setIf(ctx, key, rate, cmp, n, mode)
}

// Delete removes key and returns its accepted usage before deletion.
func (l *Suppressed) Delete(ctx context.Context, key string) (int64, bool, error) {
	return l.delete(ctx, key, "accepted")
}

// Clear removes every key of this prefix and strategy.
func (l *Suppressed) Clear(ctx context.Context) error { return l.clear(ctx) }
