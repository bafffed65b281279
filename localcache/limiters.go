package localcache

import (
	"context"

	"github.com/trypema-go/trypema"
)

var (
	_ trypema.AbsoluteLimiter   = (*Absolute)(nil)
	_ trypema.SuppressedLimiter = (*Suppressed)(nil)
)

// Absolute is the in-process limiter of the absolute strategy.
type Absolute struct{ s *store }

// NewAbsolute returns an absolute limiter configured by opts (window,
// bucket size, clock, sweep interval; see [trypema.Option]). Close it to
// stop its sweeper.
func NewAbsolute(opts ...trypema.Option) (*Absolute, error) {
	s, err := newStore(false, opts)
	if err != nil {
		return nil, err
	}
	return &Absolute{s: s}, nil
}

// Inc admits n units of key iff they fit in the key's capacity now, and
// records them; otherwise it records nothing and says when to retry.
func (l *Absolute) Inc(_ context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.s.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	now := l.s.clock.NowMs()
	e := l.s.lock(key, true)
	d, err := e.V.IncAbsolute(&l.s.p, now, rate, n)
	e.Unlock()
	return d, err
}

// IsAllowed reports, without recording anything, whether one unit of key
// would be admitted now. An unknown key is allowed with Limit 0.
func (l *Absolute) IsAllowed(_ context.Context, key string) (trypema.Decision, error) {
	if err := l.s.checkKey(key); err != nil {
		return trypema.Decision{}, err
	}
	e := l.s.lock(key, false)
	if e == nil {
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true}, nil
	}
	d := e.V.IsAllowed(&l.s.p, l.s.clock.NowMs())
	e.Unlock()
	return d, nil
}

// Get returns key's live state; an unknown key gives the zero Snapshot.
func (l *Absolute) Get(_ context.Context, key string) (trypema.Snapshot, error) {
	if err := l.s.checkKey(key); err != nil {
		return trypema.Snapshot{}, err
	}
	return l.s.get(key), nil
}

// SetRateLimit replaces the rate of a live key and keeps its history.
func (l *Absolute) SetRateLimit(_ context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	if err := l.s.checkInc(key, rate, 1); err != nil {
		return 0, false, err
	}
	return l.s.setRateLimit(key, rate)
}

// SetIf sets key's live total to n (and its rate to rate) iff
// cmp.Match(total, n); see [trypema.Limiter.SetIf].
func (l *Absolute) SetIf(_ context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	if err := l.s.open(trypema.ValidateSetIf(key, rate, cmp, n, mode)); err != nil {
		return trypema.SetResult{}, err
	}
	return l.s.setIf(key, rate, cmp, n, mode)
}

// Delete removes key and returns its live total before deletion.
func (l *Absolute) Delete(_ context.Context, key string) (int64, bool, error) {
	if err := l.s.checkKey(key); err != nil {
		return 0, false, err
	}
	u, ok := l.s.remove(key)
	return u, ok, nil
}

// Clear removes every key of this limiter.
func (l *Absolute) Clear(context.Context) error {
	if l.s.closed.Load() {
		return trypema.ErrClosed
	}
	l.s.clear()
	return nil
}

// Close stops the sweeper; later calls return [trypema.ErrClosed].
func (l *Absolute) Close() error { return l.s.close() }

// Suppressed is the in-process limiter of the suppressed strategy.
type Suppressed struct{ s *store }

// NewSuppressed returns a suppressed limiter configured by opts (window,
// bucket size, hard-limit factor, factor cache TTL, clock, random draws,
// sweep interval; see [trypema.Option]). Close it to stop its sweeper.
func NewSuppressed(opts ...trypema.Option) (*Suppressed, error) {
	s, err := newStore(true, opts)
	if err != nil {
		return nil, err
	}
	return &Suppressed{s: s}, nil
}

// Inc records n units of key and decides: always admitted up to the soft
// cap, never above the hard cap, and in between admitted with probability
// 1 − SuppressionFactor.
func (l *Suppressed) Inc(_ context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error) {
	if err := l.s.checkInc(key, rate, n); err != nil {
		return trypema.Decision{}, err
	}
	now := l.s.clock.NowMs()
	e := l.s.lock(key, true)
	d, err := e.V.IncSuppressed(&l.s.p, now, rate, n, l.s.random)
	e.Unlock()
	return d, err
}

// SuppressionFactor returns key's current factor in [0, 1] (0 for an
// unknown key) without recording anything.
func (l *Suppressed) SuppressionFactor(_ context.Context, key string) (float64, error) {
	if err := l.s.checkKey(key); err != nil {
		return 0, err
	}
	e := l.s.lock(key, false)
	if e == nil {
		return 0, nil
	}
	f := e.V.Factor(&l.s.p, l.s.clock.NowMs())
	e.Unlock()
	return f, nil
}

// Get returns key's live state; an unknown key gives the zero Snapshot.
func (l *Suppressed) Get(_ context.Context, key string) (trypema.Snapshot, error) {
	if err := l.s.checkKey(key); err != nil {
		return trypema.Snapshot{}, err
	}
	return l.s.get(key), nil
}

// SetRateLimit replaces the rate of a live key and keeps its history.
func (l *Suppressed) SetRateLimit(_ context.Context, key string, rate trypema.Rate) (trypema.Rate, bool, error) {
	if err := l.s.checkInc(key, rate, 1); err != nil {
		return 0, false, err
	}
	return l.s.setRateLimit(key, rate)
}

// SetIf sets key's live total to n (and its rate to rate) iff
// cmp.Match(total, n); lowering keeps floor(declined × kept / count) of
// each thinned bucket's declines. See [trypema.Limiter.SetIf].
func (l *Suppressed) SetIf(_ context.Context, key string, rate trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	if err := l.s.open(trypema.ValidateSetIf(key, rate, cmp, n, mode)); err != nil {
		return trypema.SetResult{}, err
	}
	return l.s.setIf(key, rate, cmp, n, mode)
}

// Delete removes key and returns its accepted usage before deletion.
func (l *Suppressed) Delete(_ context.Context, key string) (int64, bool, error) {
	if err := l.s.checkKey(key); err != nil {
		return 0, false, err
	}
	u, ok := l.s.remove(key)
	return u, ok, nil
}

// Clear removes every key of this limiter.
func (l *Suppressed) Clear(context.Context) error {
	if l.s.closed.Load() {
		return trypema.ErrClosed
	}
	l.s.clear()
	return nil
}

// Close stops the sweeper; later calls return [trypema.ErrClosed].
func (l *Suppressed) Close() error { return l.s.close() }
