// Package trypema is the shared vocabulary of Trypema-Go, a sliding-window
// rate limiter whose algorithm lives in versioned Redis Lua scripts and is
// reproduced exactly in Go for in-process use.
//
// This package does no I/O. It holds what every provider shares: rates
// ([PerSecond] … [PerMonth]), configuration ([Option], [NewConfig]) and its
// validation, key and count validation, the capacity arithmetic ([Capacity]),
// the result types ([Decision], [Snapshot], [SetResult]), comparators and
// history modes for [Limiter.SetIf], error values that work with [errors.Is],
// and the interfaces that all six limiters satisfy:
//
//	strategy \ provider   localcache   client (Redis)   hybrid
//	absolute              ✓            ✓                ✓
//	suppressed            ✓            ✓                ✓
//
// # The model
//
// A key's usage is kept in buckets on a sliding window of W milliseconds. A
// call joins the newest bucket when it arrives less than B milliseconds after
// that bucket's first call, and opens a new bucket otherwise. A bucket's units
// leave the window only when its newest call is W old, so for every instant t
// the admitted units of calls in (t−W, t] never exceed the capacity.
//
// The capacity of a rate r (units per second) over W is
//
//	C = floor(r × W_ms / 1000 + 1e-9)
//
// computed in IEEE doubles in exactly this order by the Go providers and the
// Lua scripts alike (see [Capacity]).
//
// The absolute strategy admits a call of n units iff the live units plus n
// fit in C, and otherwise says exactly how long to wait. The suppressed
// strategy admits everything up to a soft cap S = C, denies with a growing
// probability between S and the hard cap H = floor(r × W_s × hf + 1e-9), and
// never lets accepted usage exceed H, so that under overload the admitted rate
// settles near the target instead of flapping on and off.
//
// The first call that creates state for a key fixes its rate ("sticky"
// rate); later calls' rates are ignored until the key's usage has left the
// window or [Limiter.SetRateLimit] or [Limiter.SetIf] replaces it.
package trypema
