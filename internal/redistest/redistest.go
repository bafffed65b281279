package redistest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// installHint tells a developer how to get a Redis for the tests.
const installHint = "install Redis (Debian/Ubuntu: apt-get install redis-server) " +
	"or set REDIS_URL=redis://host:port/0 to use a running server"

// backend is a Redis that this package started and may stop again.
type backend interface {
	start() (addr string, err error) // start; after the first start, on the same port
	stop()                           // kill; idempotent
	close()                          // stop and release everything for good
}

// Server is a Redis for tests. Its methods are safe for concurrent use.
type Server struct {
	b    backend // nil for a REDIS_URL server, which is not ours to stop
	addr string
	url  string

	mu      sync.Mutex
	running bool
	epoch   time.Time // last Stop or (re)start; older pooled conns are dropped
	closed  bool

	pool *redis.Pool // created on first use
}

// unavailableError reports that no way to get a Redis exists here; it turns
// into a skip, or a failure under TRYPEMA_REQUIRE_REDIS=1.
type unavailableError struct{ docker error }

func (e *unavailableError) Error() string {
	return fmt.Sprintf("no Redis available: REDIS_URL is not set, redis-server is not on PATH "+
		"and no Docker engine answered (%v); %s", e.docker, installHint)
}

// Start returns a Redis for this test alone (see the package doc for where
// it comes from) and stops it when the test ends. It skips the test when no
// Redis can be had, or fails it when TRYPEMA_REQUIRE_REDIS=1.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := open()
	if err != nil {
		fail(tb, err)
		return nil
	}
	tb.Cleanup(s.close)
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the one server of this test package, starting it on first
// use, for packages where a server per test would be wasted time. Tests
// sharing it must use distinct keys or call FlushAll themselves. It lives
// until RunMain stops it; without RunMain it dies with the test binary (on
// Linux) but its temporary directory is left behind.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.s, shared.err = open() })
	if shared.err != nil {
		fail(tb, shared.err)
		return nil
	}
	return shared.s
}

// RunMain runs the tests, stops the Shared server and exits with the tests'
// status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.RunMain(m) }
func RunMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	code := m.Run()
	if shared.s != nil {
		shared.s.close()
	}
	return code
}

// open finds a Redis in the order given in the package doc.
func open() (*Server, error) {
	if raw := os.Getenv("REDIS_URL"); raw != "" {
		return external(raw)
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return launch(&process{bin: bin})
	}
	pool, err := dockerPool()
	if err != nil {
		return nil, &unavailableError{docker: err}
	}
	return launch(&container{pool: pool})
}

// external checks that the REDIS_URL server answers, so that a wrong URL
// fails here with its name rather than later in some command.
func external(raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" {
		return nil, fmt.Errorf("REDIS_URL=%q is not a redis://host:port/db URL", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	s := &Server{addr: addr, url: raw, running: true}
	c, err := s.dial()
	if err == nil {
		_, err = c.Do("PING")
		c.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL=%s does not answer PING: %w", raw, err)
	}
	return s, nil
}

func launch(b backend) (*Server, error) {
	addr, err := b.start()
	if err != nil {
		b.close()
		return nil, err
	}
	return &Server{b: b, addr: addr, url: "redis://" + addr + "/0", running: true, epoch: time.Now()}, nil
}

// fail reports a failure to get a Redis: a skip when Redis is merely
// missing (unless TRYPEMA_REQUIRE_REDIS=1), a failure for anything else.
func fail(tb testing.TB, err error) {
	tb.Helper()
	var unavailable *unavailableError
	switch {
	case !errors.As(err, &unavailable):
		tb.Fatalf("redistest: %v", err)
	case os.Getenv("TRYPEMA_REQUIRE_REDIS") == "1":
		tb.Fatalf("redistest: %v (failing instead of skipping because TRYPEMA_REQUIRE_REDIS=1)", err)
	default:
		tb.Skipf("redistest: %v (set TRYPEMA_REQUIRE_REDIS=1 to fail instead of skipping)", err)
	}
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's URL, redis://host:port/0 (or REDIS_URL as given).
func (s *Server) URL() string { return s.url }

func (s *Server) dial() (redis.Conn, error) {
	return redis.DialURL(s.url, redis.DialConnectTimeout(5*time.Second))
}

// Dial opens a new connection, closed when the test ends, and fails the
// test if the server does not accept it.
func (s *Server) Dial(tb testing.TB) redis.Conn {
	tb.Helper()
	c, err := s.dial()
	if err != nil {
		tb.Fatalf("redistest: dial %s: %v", s.url, err)
		return nil
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Pool returns the server's connection pool, closed with the server.
// Connections idle since before a Stop or Restart are dropped on borrow,
// so that the pool works again as soon as the server is back.
func (s *Server) Pool() *redis.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		s.pool = &redis.Pool{
			MaxIdle:     8,
			IdleTimeout: time.Minute,
			Dial:        s.dial,
			TestOnBorrow: func(_ redis.Conn, lastUsed time.Time) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				if lastUsed.Before(s.epoch) {
					return errors.New("redistest: connection predates a server restart")
				}
				return nil
			},
		}
		if s.closed {
			_ = s.pool.Close() // too late: Get reports the closed pool
		}
	}
	return s.pool
}

// Do runs one command on a pooled connection and fails the test on any
// error, including Redis error replies, so that setup code stays short.
func (s *Server) Do(tb testing.TB, cmd string, args ...interface{}) interface{} {
	tb.Helper()
	c := s.Pool().Get()
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		tb.Fatalf("redistest: %s %v: %v", cmd, args, err)
	}
	return v
}

// FlushAll deletes every key in every database. Servers are not flushed
// automatically, so tests that share one call it when they need a clean slate.
func (s *Server) FlushAll(tb testing.TB) {
	tb.Helper()
	s.Do(tb, "FLUSHALL")
}

// Stop kills the server, as a crash would, for fault-injection tests. Its
// port stays reserved, so that Start or Restart brings it back at the same
// address. Stopping an already stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.ownedOrSkip(tb, "Stop")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Start starts a stopped server again on the same port, with no data (there
// is no persistence). Starting a running server does nothing.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.ownedOrSkip(tb, "Start")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		tb.Fatalf("redistest: restarting %s: %v", s.addr, err)
	}
}

// Restart kills the server and starts it again on the same port with no
// data, as a server restart in the middle of a run would.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.ownedOrSkip(tb, "Restart")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.startLocked(); err != nil {
		tb.Fatalf("redistest: restarting %s: %v", s.addr, err)
	}
}

// ownedOrSkip skips the test when the server comes from REDIS_URL: killing
// a server someone else runs is not this package's business.
func (s *Server) ownedOrSkip(tb testing.TB, method string) {
	tb.Helper()
	if s.b == nil {
		tb.Skipf("redistest: Server.%s is unsupported for the server given by REDIS_URL=%s, "+
			"which this package did not start; unset REDIS_URL to run this test on a throwaway server",
			method, s.url)
	}
}

func (s *Server) stopLocked() {
	if s.closed || !s.running {
		return
	}
	s.b.stop()
	s.running = false
	s.epoch = time.Now()
}

func (s *Server) startLocked() error {
	if s.closed {
		return errors.New("server already closed")
	}
	if s.running {
		return nil
	}
	addr, err := s.b.start()
	if err != nil {
		return err
	}
	if addr != s.addr {
		s.b.stop()
		return fmt.Errorf("server came back on %s instead of %s", addr, s.addr)
	}
	s.running = true
	s.epoch = time.Now()
	return nil
}

// close stops the server for good and closes its pool.
func (s *Server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.pool != nil {
		_ = s.pool.Close()
	}
	if s.b != nil {
		s.b.close()
	}
}
