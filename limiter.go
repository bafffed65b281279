package trypema

import "context"

// Limiter is what all six limiters share (SPEC §5). Every method is safe
// for concurrent use. Methods that may do I/O take a context first; the
// local provider accepts and ignores it.
type Limiter interface {
	// Inc asks for n units of key at rate and records them as the strategy
	// says. The rate is sticky: it is stored when the call creates the
	// key's state and ignored while that state lives.
	Inc(ctx context.Context, key string, rate Rate, n int64) (Decision, error)
	// Get returns the key's live state without changing anything; an
	// unknown key gives the zero Snapshot.
	Get(ctx context.Context, key string) (Snapshot, error)
	// SetRateLimit replaces the stored rate of a live key and keeps its
	// history. It returns the previous rate and whether the key existed;
	// an unknown key is left alone.
	SetRateLimit(ctx context.Context, key string, rate Rate) (previous Rate, existed bool, err error)
	// SetIf sets the key's live total to n and its rate to rate iff
	// cmp.Match(total, n); mode says how the buckets are reshaped. n = 0
	// deletes the key. A miss writes nothing.
	SetIf(ctx context.Context, key string, rate Rate, cmp Comparator, n int64, mode HistoryMode) (SetResult, error)
	// Delete removes one key and returns its live usage before deletion
	// (absolute: total; suppressed: accepted) and whether it existed.
	Delete(ctx context.Context, key string) (usage int64, existed bool, err error)
	// Clear removes every key of this provider, strategy and prefix, and
	// nothing else.
	Clear(ctx context.Context) error
	// Close stops the limiter's background work. Later calls return
	// ErrClosed.
	Close() error
}

// AbsoluteLimiter is a limiter of the absolute strategy: deterministic
// allow or reject with an exact retry-after.
type AbsoluteLimiter interface {
	Limiter
	// IsAllowed answers, without recording anything, whether one unit
	// would be admitted now.
	IsAllowed(ctx context.Context, key string) (Decision, error)
}

// SuppressedLimiter is a limiter of the suppressed strategy: probabilistic
// degradation that holds the admitted rate near the target.
type SuppressedLimiter interface {
	Limiter
	// SuppressionFactor returns the key's current factor in [0, 1]
	// without recording anything.
	SuppressionFactor(ctx context.Context, key string) (float64, error)
}
