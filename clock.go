package trypema

import (
	"sync/atomic"
	"time"
)

// Clock is a limiter's time source: Unix time in milliseconds. Providers
// read it on every call, so it must be cheap and safe for concurrent use.
type Clock interface {
	NowMs() int64
}

// SystemClock returns the process clock: Unix milliseconds anchored once at
// start-up and advanced by the monotonic clock. It never runs backwards and
// costs about half of time.Now, because it reads only the monotonic clock
// (time.Since of a monotonic reading) instead of both the wall and the
// monotonic clocks.
func SystemClock() Clock { return systemClock{} }

var (
	processStart   = time.Now()
	processStartMs = processStart.UnixMilli()
)

type systemClock struct{}

func (systemClock) NowMs() int64 {
	return processStartMs + int64(time.Since(processStart)/time.Millisecond)
}

// ManualClock is a Clock that moves only when told to, for tests and
// simulations. The zero value reads 0. It is safe for concurrent use.
type ManualClock struct{ ms atomic.Int64 }

// NewManualClock returns a ManualClock reading ms.
func NewManualClock(ms int64) *ManualClock {
	c := &ManualClock{}
	c.ms.Store(ms)
	return c
}

// NowMs returns the current reading.
func (c *ManualClock) NowMs() int64 { return c.ms.Load() }

// Set moves the clock to ms (backwards too, to test the monotonic guard).
func (c *ManualClock) Set(ms int64) { c.ms.Store(ms) }

// Advance moves the clock forward by d, truncated to milliseconds.
func (c *ManualClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
