package trypema

import (
	"fmt"
	"math"
	"time"
)

// Defaults of SPEC §1.
const (
	DefaultWindow         = 10 * time.Second
	DefaultBucketSize     = 100 * time.Millisecond
	DefaultHardLimit      = 1.0
	DefaultFactorCacheTTL = 100 * time.Millisecond
	DefaultSyncInterval   = 10 * time.Millisecond

	// MaxWindow is the longest window a limiter accepts.
	MaxWindow = 400 * 24 * time.Hour
)

// Config is the validated configuration of a limiter. Build it with
// [NewConfig]; providers do so from the options passed to their
// constructors, so most programs never see a Config.
type Config struct {
	// Window is the sliding window W. Default 10 s.
	Window time.Duration
	// BucketSize is the coalescing size B: calls less than B after the
	// start of the newest bucket join it. 1 ms ≤ B ≤ W. Default 100 ms.
	BucketSize time.Duration
	// HardLimitFactor is hf ≥ 1: the suppressed strategy never lets
	// accepted usage exceed floor(r × W_s × hf). Default 1.
	HardLimitFactor float64
	// FactorCacheTTL is how long a computed suppression factor is reused.
	// Default 100 ms.
	FactorCacheTTL time.Duration
	// SyncInterval is how often the hybrid provider commits local counts
	// to Redis. Default 10 ms.
	SyncInterval time.Duration
	// SweepInterval is how often the local and hybrid providers drop idle
	// keys. Zero picks the window, clamped to [1 s, 1 min].
	SweepInterval time.Duration
	// Clock is the time source. Nil means the provider's own: [SystemClock]
	// for the local and hybrid providers, the Redis server's TIME for the
	// Redis provider (a Clock given to it is sent as the scripts' now_ms).
	Clock Clock
	// Random returns uniform draws in [0, 1) for the suppressed strategy.
	// Nil means math/rand/v2's Float64.
	Random func() float64
	// Prefix namespaces the Redis keys of the Redis and hybrid providers.
	// Default "trypema".
	Prefix string
	// FailurePolicy is what Redis-backed limiters do when Redis fails.
	FailurePolicy FailurePolicy
}

// Option sets one field of a [Config].
type Option func(*Config)

// WithWindow sets the sliding window: a whole number of milliseconds
// between 1 ms and 400 days.
func WithWindow(d time.Duration) Option { return func(c *Config) { c.Window = d } }

// WithBucketSize sets the coalescing bucket size: a whole number of
// milliseconds between 1 ms and the window.
func WithBucketSize(d time.Duration) Option { return func(c *Config) { c.BucketSize = d } }

// WithHardLimitFactor sets the suppressed strategy's hard-limit factor
// (finite, ≥ 1).
func WithHardLimitFactor(f float64) Option { return func(c *Config) { c.HardLimitFactor = f } }

// WithFactorCacheTTL sets how long a suppression factor is reused (≥ 1 ms).
func WithFactorCacheTTL(d time.Duration) Option { return func(c *Config) { c.FactorCacheTTL = d } }

// WithSyncInterval sets the hybrid provider's sync interval (≥ 1 ms).
func WithSyncInterval(d time.Duration) Option { return func(c *Config) { c.SyncInterval = d } }

// WithSweepInterval sets how often idle keys are dropped from memory (≥ 1 ms).
func WithSweepInterval(d time.Duration) Option { return func(c *Config) { c.SweepInterval = d } }

// WithClock replaces the time source, for tests and simulations.
func WithClock(clk Clock) Option { return func(c *Config) { c.Clock = clk } }

// WithRandom replaces the uniform draws of the suppressed strategy, for
// tests that need reproducible decisions. f must return values in [0, 1).
func WithRandom(f func() float64) Option { return func(c *Config) { c.Random = f } }

// WithPrefix sets the Redis key prefix of the Redis and hybrid providers.
func WithPrefix(p string) Option { return func(c *Config) { c.Prefix = p } }

// WithFailurePolicy sets what Redis-backed limiters do when Redis fails.
func WithFailurePolicy(p FailurePolicy) Option { return func(c *Config) { c.FailurePolicy = p } }

// DefaultConfig returns the configuration used when no option is given.
func DefaultConfig() Config {
	return Config{
		Window:          DefaultWindow,
		BucketSize:      DefaultBucketSize,
		HardLimitFactor: DefaultHardLimit,
		FactorCacheTTL:  DefaultFactorCacheTTL,
		SyncInterval:    DefaultSyncInterval,
		Prefix:          DefaultPrefix,
	}
}

// DefaultPrefix is the default Redis key prefix.
const DefaultPrefix = "trypema"

// NewConfig applies opts to [DefaultConfig] and validates the result.
func NewConfig(opts ...Option) (Config, error) {
	c := DefaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = min(max(c.Window, time.Second), time.Minute)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and returns the first problem found.
func (c Config) Validate() error {
	if err := checkMillis("window", c.Window, time.Millisecond, MaxWindow, ErrInvalidWindow); err != nil {
		return err
	}
	if err := checkMillis("bucket size", c.BucketSize, time.Millisecond, c.Window, ErrInvalidBucket); err != nil {
		return err
	}
	if math.IsNaN(c.HardLimitFactor) || math.IsInf(c.HardLimitFactor, 0) || c.HardLimitFactor < 1 {
		return fmt.Errorf("%w: hard-limit factor %s must be a finite number ≥ 1 (1 means no headroom above the rate)",
			ErrInvalidFactor, fmtFloat(c.HardLimitFactor))
	}
	if err := checkMillis("suppression-factor cache TTL", c.FactorCacheTTL, time.Millisecond, math.MaxInt64, ErrInvalidOption); err != nil {
		return err
	}
	if err := checkMillis("sync interval", c.SyncInterval, time.Millisecond, math.MaxInt64, ErrInvalidOption); err != nil {
		return err
	}
	if err := checkMillis("sweep interval", c.SweepInterval, time.Millisecond, math.MaxInt64, ErrInvalidOption); err != nil {
		return err
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		return err
	}
	if c.FailurePolicy > FailClosed {
		return fmt.Errorf("%w: unknown failure policy %d; use FailError, FailOpen or FailClosed", ErrInvalidOption, c.FailurePolicy)
	}
	return nil
}

func checkMillis(what string, d, lo, hi time.Duration, kind error) error {
	switch {
	case d%time.Millisecond != 0:
		return fmt.Errorf("%w: %s %v is not a whole number of milliseconds; round it to a multiple of time.Millisecond", kind, what, d)
	case d < lo:
		return fmt.Errorf("%w: %s %v is below the minimum of %v", kind, what, d, lo)
	case d > hi:
		if kind == ErrInvalidBucket {
			return fmt.Errorf("%w: %s %v is larger than the window %v; use a bucket no larger than the window", kind, what, d, hi)
		}
		if hi == MaxWindow {
			return fmt.Errorf("%w: %s %v is above the maximum of %v (400 days)", kind, what, d, hi)
		}
		return fmt.Errorf("%w: %s %v is above the maximum of %v", kind, what, d, hi)
	}
	return nil
}

// WindowMs returns the window in milliseconds.
func (c Config) WindowMs() int64 { return c.Window.Milliseconds() }

// BucketMs returns the bucket size in milliseconds.
func (c Config) BucketMs() int64 { return c.BucketSize.Milliseconds() }

// FactorCacheMs returns the suppression-factor cache TTL in milliseconds.
func (c Config) FactorCacheMs() int64 { return c.FactorCacheTTL.Milliseconds() }
