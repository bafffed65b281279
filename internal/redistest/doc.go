// Package redistest gives tests a real Redis instead of a mock.
//
// Trypema's behaviour lives in Lua scripts and in how Redis executes them, so a
// fake would test the fake. Start (one server per test) and Shared (one server
// per test package) find a Redis in this order of preference:
//
//  1. REDIS_URL (for example redis://127.0.0.1:6379/0): that server is used
//     as is. No process is started, keys are not flushed, and Server.Stop,
//     Server.Start and Server.Restart skip the test, because the server is
//     not ours to stop.
//  2. redis-server on PATH: a throwaway process on a free loopback port, with
//     no persistence and its own temporary directory. It is killed at
//     cleanup; on Linux it also runs in its own process group with a
//     parent-death signal, so it dies with the test binary even when a test
//     panics or the binary is killed.
//  3. A reachable Docker engine: a redis:7 container started with dockertest
//     and removed at cleanup. The engine is probed with a short ping, so this
//     step costs nothing on machines without Docker.
//  4. Nothing: the test is skipped with a message saying how to get Redis
//     (apt-get install redis-server on Debian/Ubuntu, or set REDIS_URL).
//     When TRYPEMA_REQUIRE_REDIS=1 (set by make test and CI) the test fails
//     instead, so a missing Redis can never turn a CI run green by skipping.
//
// A package whose tests use Shared stops the shared server from TestMain:
//
//	func TestMain(m *testing.M) { redistest.RunMain(m) }
package redistest
