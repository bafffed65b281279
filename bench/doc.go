// Package bench measures Trypema-Go side by side with the rate limiters
// users would pick instead, in one run on one machine, and gives later
// performance changes a baseline.
//
// It is a module of its own so that the library never depends on its
// peers. Every library is reduced to one call, [Limiter.Allow]: may this
// key go ahead now? Each is configured with the same [Limit] (units per
// window), fed the same pre-generated key sequences ([KeySet]) and, for
// the Redis-backed ones, the same redis-server ([Server]).
//
// The benchmarks live in bench_test.go; cmd/benchreport runs them
// (make bench at the repository root), measures Redis memory and server
// time per library, and writes BENCHMARKS.md.
//
// Adding a library, or a provider of Trypema-Go such as hybrid, is one
// entry in [LocalLibs] or [RedisLibs].
package bench
