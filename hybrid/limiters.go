package hybrid

import (
	"context"
	"errors"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
)

var (
	_ trypema.AbsoluteLimiter   = (*Absolute)(nil)
	_ trypema.SuppressedLimiter = (*Suppressed)(nil)
)

const (
	strategyAbsolute   = "abs"
	strategySuppressed = "sup"
)

// Absolute is the hybrid limiter of the absolute strategy.
type Absolute struct {
	*base
	remote *client.Absolute
}

// The operations that are not decisions commit what is pending for the key
// and then go to Redis through the Redis provider's limiter.

// Get commits what is pending for key, then reads its state from Redis.
func (b *base) Get(ctx context.Context, key string) (trypema.Snapshot, error) {
	if err := b.checkKey(key); err != nil {
		return trypema.Snapshot{}, err
	}
	if err := b.flushKey(ctx, key); err != nil {
		return trypema.Snapshot{}, err
	}
	return b.remote.Get(ctx, key)
}

// SetRateLimit commits what is pending for key, then replaces its rate.
func (b *base) SetRateLimit(ctx context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	if err := b.flushKey(ctx, key); err != nil {
		return 0, false, err
	}
	return b.remote.SetRateLimit(ctx, key, rate)
}

// SetIf commits what is pending for key, then sets it conditionally.
func (b *base) SetIf(ctx context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	if err := b.flushKey(ctx, key); err != nil {
		return trypema.SetResult{}, err
	}
	return b.remote.SetIf(ctx, key, rate, cmp, n, mode)
}

// Delete commits what is pending for key, deletes it in Redis and forgets
// its local state, under the key's lock.
func (b *base) Delete(ctx context.Context, key string) (int64, bool, error) {
	if err := b.checkKey(key); err != nil {
		return 0, false, err
	}
	return b.deleteKey(ctx, key, b.remote.Delete)
}

// Clear forgets all local state, pending calls included, and removes every
// key of this prefix and strategy from Redis.
func (b *base) Clear(ctx context.Context) error {
	b.keys.Clear(nil)
	return b.remote.Clear(ctx)
}

// NewAbsolute returns a hybrid absolute limiter over pool, configured by
// opts (window, bucket size, sync interval, prefix, failure policy, clock;
// see trypema.Option) and hopts. Close it to commit what is pending.
func NewAbsolute(pool *redis.Pool, opts []trypema.Option, hopts ...Option) (*Absolute, error) {
	b, err := newBase(pool, strategyAbsolute, opts, hopts)
	if err != nil {
		return nil, err
	}
	remote, err := client.NewAbsoluteWith(pool, append(append([]trypema.Option(nil), opts...), trypema.WithClock(b.clock)), b.set.scripts)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.remote = remote
	return &Absolute{base: b, remote: remote}, nil
}

// Inc admits n units of key from the local reservation when it can, and
// asks Redis otherwise (which also renews the reservation).
func (l *Absolute) Inc(ctx context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	now := l.clock.NowMs()
	e := l.keys.Lock(key, true)
	defer e.Unlock()
	st := &e.V
	st.callRate, st.lastUse = rate, now
	if l.set.syncEveryCall {
		d, err := l.syncNow(ctx, key, st, now, n, 0, 0)
		return l.degrade(st, now, n, d, err)
	}
	if d, ok := l.local(key, st, now, n); ok {
		return d, nil
	}
	d, err := l.syncNow(ctx, key, st, now, n, 0, want(st))
	return l.degrade(st, now, n, d, err)
}

// local decides from the reservation or a recent rejection from Redis.
func (l *Absolute) local(key string, st *keyState, now, n int64) (trypema.Decision, bool) {
	if st.budget >= n {
		st.budget -= n
		st.add(now, l.cfg.BucketMs(), n, 0)
		st.used += n
		l.markDirty(key, st)
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: st.limit, Remaining: st.remaining + st.budget}, true
	}
	if st.rejectLive && n >= st.rejectN && now-st.rejectAt < l.cfg.SyncInterval.Milliseconds() {
		d := st.reject
		if d.RetryAfter -= time.Duration(now-st.rejectAt) * time.Millisecond; d.RetryAfter > 0 {
			return d, true
		}
	}
	return trypema.Decision{}, false
}

// degrade turns a Redis failure into a local decision for a key with local
// state, or into the failure policy for a key without.
func (l *Absolute) degrade(st *keyState, now, n int64, d trypema.Decision, err error) (trypema.Decision, error) {
	if err == nil || !errors.Is(err, trypema.ErrRedisUnavailable) {
		return d, err
	}
	if !st.hasLocalState() {
		return policy(l.cfg.FailurePolicy, err)
	}
	// Expiries since the last sync are not credited: this errs on the side
	// of rejecting until Redis is back.
	if st.liveAtSync+st.outage+n <= st.limit {
		st.outage += n
		st.add(now, l.cfg.BucketMs(), n, 0)
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: st.limit,
			Remaining: st.limit - st.liveAtSync - st.outage}, nil
	}
	return trypema.Decision{Outcome: trypema.Rejected, Limit: st.limit, RetryAfter: l.cfg.SyncInterval,
		RemainingAfterWaiting: n}, nil
}

func policy(p trypema.FailurePolicy, err error) (trypema.Decision, error) {
	switch p {
	case trypema.FailOpen:
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Degraded: true}, nil
	case trypema.FailClosed:
		return trypema.Decision{Outcome: trypema.Rejected, Degraded: true}, nil
	}
	return trypema.Decision{}, err
}

// TryInc decides n units of key from local state only, without any I/O.
// It reports false, and records nothing, when the answer needs Redis.
func (l *Absolute) TryInc(key string, n int64) (trypema.Decision, bool, error) {
	if err := trypema.ValidateCount(n); err != nil {
		return trypema.Decision{}, false, err
	}
	if err := l.checkKey(key); err != nil {
		return trypema.Decision{}, false, err
	}
	e := l.keys.Lock(key, false)
	if e == nil {
		return trypema.Decision{}, false, nil
	}
	defer e.Unlock()
	d, ok := l.local(key, &e.V, l.clock.NowMs(), n)
	return d, ok, nil
}

// IsAllowed commits what is pending for key, then asks Redis.
func (l *Absolute) IsAllowed(ctx context.Context, key string) (trypema.Decision, error) {
	if err := l.checkKey(key); err != nil {
		return trypema.Decision{}, err
	}
	if err := l.flushKey(ctx, key); err != nil {
		return policy(l.cfg.FailurePolicy, err)
	}
	return l.remote.IsAllowed(ctx, key)
}

// Suppressed is the hybrid limiter of the suppressed strategy.
type Suppressed struct {
	*base
	remote *client.Suppressed
}

// NewSuppressed returns a hybrid suppressed limiter over pool.
func NewSuppressed(pool *redis.Pool, opts []trypema.Option, hopts ...Option) (*Suppressed, error) {
	b, err := newBase(pool, strategySuppressed, opts, hopts)
	if err != nil {
		return nil, err
	}
	remote, err := client.NewSuppressedWith(pool, append(append([]trypema.Option(nil), opts...), trypema.WithClock(b.clock), trypema.WithRandom(b.random)), b.set.scripts)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.remote = remote
	return &Suppressed{base: b, remote: remote}, nil
}

// Inc decides n units of key locally with the factor of the last sync and
// the local reservation of accepted units, and asks Redis when an admission
// does not fit the reservation.
func (l *Suppressed) Inc(ctx context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	now, u := l.clock.NowMs(), l.random()
	e := l.keys.Lock(key, true)
	defer e.Unlock()
	st := &e.V
	st.callRate, st.lastUse = rate, now
	if l.set.syncEveryCall {
		d, err := l.syncNow(ctx, key, st, now, n, u, 0)
		return l.degrade(st, now, n, u, d, err)
	}
	if d, ok := l.local(key, st, now, n, u); ok {
		return d, nil
	}
	d, err := l.syncNow(ctx, key, st, now, n, u, want(st))
	return l.degrade(st, now, n, u, d, err)
}

// local decides from the state of the last sync: declines need no
// reservation, admissions do.
func (l *Suppressed) local(key string, st *keyState, now, n int64, u float64) (trypema.Decision, bool) {
	if !st.known {
		return trypema.Decision{}, false
	}
	spent := st.liveAtSync - st.budget // accepted units, our unspent reservation excluded
	forecast := spent + n
	decline := func(f float64) (trypema.Decision, bool) {
		st.add(now, l.cfg.BucketMs(), n, n)
		l.markDirty(key, st)
		return trypema.Decision{Outcome: trypema.Suppressed, Limit: st.limit, SuppressionFactor: f}, true
	}
	if forecast > st.hard {
		return decline(1)
	}
	f := st.factor
	if f != 0 || forecast > st.limit {
		if !(u < 1-f) {
			return decline(f)
		}
	}
	if st.budget < n {
		return trypema.Decision{}, false
	}
	st.budget -= n
	st.add(now, l.cfg.BucketMs(), n, 0)
	st.used += n
	l.markDirty(key, st)
	if f == 0 && forecast <= st.limit {
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: st.limit, Remaining: st.limit - forecast}, true
	}
	return trypema.Decision{Outcome: trypema.Suppressed, Admitted: true, Limit: st.limit, SuppressionFactor: f}, true
}

func (l *Suppressed) degrade(st *keyState, now, n int64, u float64, d trypema.Decision, err error) (trypema.Decision, error) {
	if err == nil || !errors.Is(err, trypema.ErrRedisUnavailable) {
		return d, err
	}
	if !st.hasLocalState() {
		return policy(l.cfg.FailurePolicy, err)
	}
	// Decide with the last factor; admissions beyond the reservation are
	// counted so that accepted usage known here stays within the hard cap.
	spent := st.liveAtSync - st.budget + st.outage
	if spent+n > st.hard || !(u < 1-st.factor) {
		st.add(now, l.cfg.BucketMs(), n, n)
		f := st.factor
		if spent+n > st.hard {
			f = 1
		}
		return trypema.Decision{Outcome: trypema.Suppressed, Limit: st.limit, SuppressionFactor: f}, nil
	}
	st.outage += n
	st.add(now, l.cfg.BucketMs(), n, 0)
	return trypema.Decision{Outcome: trypema.Suppressed, Admitted: true, Limit: st.limit, SuppressionFactor: st.factor}, nil
}

// TryInc decides n units of key from local state only, without any I/O.
// It reports false, and records nothing, when the answer needs Redis.
func (l *Suppressed) TryInc(key string, n int64) (trypema.Decision, bool, error) {
	if err := trypema.ValidateCount(n); err != nil {
		return trypema.Decision{}, false, err
	}
	if err := l.checkKey(key); err != nil {
		return trypema.Decision{}, false, err
	}
	e := l.keys.Lock(key, false)
	if e == nil {
		return trypema.Decision{}, false, nil
	}
	defer e.Unlock()
	d, ok := l.local(key, &e.V, l.clock.NowMs(), n, l.random())
	return d, ok, nil
}

// SuppressionFactor commits what is pending for key, then asks Redis.
func (l *Suppressed) SuppressionFactor(ctx context.Context, key string) (float64, error) {
	if err := l.checkKey(key); err != nil {
		return 0, err
	}
	if err := l.flushKey(ctx, key); err != nil {
		return 0, err
	}
	return l.remote.SuppressionFactor(ctx, key)
}
