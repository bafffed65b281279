// Package localcache is the in-process provider: absolute and suppressed
// limiters whose state lives in this process's memory, computing exactly
// what the Lua scripts compute in Redis.
//
// Every key has its own lock, so admission is exact under any concurrency:
// 1,000 goroutines asking for one unit of a fresh key with capacity 100
// admit exactly 100. Deciding on an existing key allocates nothing. A
// background sweeper drops keys whose usage has left the window, so memory
// follows the number of live keys; Close stops it.
//
// The context arguments exist so that the local, Redis and hybrid
// limiters share one interface; the local provider does no I/O and ignores
// them.
//
// Time comes from [trypema.SystemClock] unless [trypema.WithClock] gives
// another, such as a [trypema.ManualClock] in tests.
package localcache
