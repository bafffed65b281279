package redistest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// These tests exercise every source of Redis themselves; an inherited
	// REDIS_URL would turn the throwaway-server tests into skips.
	os.Unsetenv("REDIS_URL")
	code := run(m)
	if code == 0 {
		if pids := redisChildren(); len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "redis-server children left after the tests: %v\n", pids)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// redisChildren lists this process's redis-server children, zombies
// included, from /proc.
func redisChildren() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil // no /proc: nothing to check
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || end < open {
			continue
		}
		comm, rest := string(stat[open+1:end]), strings.Fields(string(stat[end+1:]))
		if len(rest) > 1 && rest[1] == strconv.Itoa(os.Getpid()) && strings.HasPrefix(comm, "redis") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pid returns the server's process id, or skips when it is not a process.
func pid(t *testing.T, s *Server) int {
	t.Helper()
	p, ok := s.b.(*process)
	if !ok || p.srv == nil {
		t.Skip("server is not a redis-server process")
	}
	return p.srv.Pid()
}

func TestStartAnswersPing(t *testing.T) {
	t.Parallel()
	s := Start(t)
	got, err := redis.String(s.Dial(t).Do("PING"))
	if err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr() = %q, want a 127.0.0.1 address", s.Addr())
	}
}

func TestSetGetRoundTrip(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if got := s.Do(t, "SET", "greeting", "hello"); got != "OK" {
		t.Fatalf("SET = %v, want OK", got)
	}
	got, err := redis.String(s.Do(t, "GET", "greeting"), nil)
	if err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want hello", got, err)
	}
	s.FlushAll(t)
	if n, _ := redis.Int(s.Do(t, "DBSIZE"), nil); n != 0 {
		t.Fatalf("DBSIZE after FlushAll = %d, want 0", n)
	}
}

func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	a.Do(t, "SET", "k", "a")
	if _, err := redis.String(b.Dial(t).Do("GET", "k")); !errors.Is(err, redis.ErrNil) {
		t.Fatalf("GET k on the second server: err = %v, want redis.ErrNil", err)
	}
	if got, _ := redis.String(a.Do(t, "GET", "k"), nil); got != "a" {
		t.Fatalf("GET k on the first server = %q, want a", got)
	}
}

func TestStopAndRestartOnSamePort(t *testing.T) {
	t.Parallel()
	s := Start(t)
	addr, oldPID := s.Addr(), pid(t, s)
	s.Do(t, "SET", "before", "1") // also leaves an idle pooled connection
	conn := s.Dial(t)

	s.Stop(t)
	if _, err := conn.Do("PING"); err == nil {
		t.Fatal("PING on an open connection succeeded after Stop")
	}
	if c, err := redis.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dialing %s succeeded after Stop", addr)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", oldPID)); err == nil {
		t.Errorf("process %d still exists after Stop", oldPID)
	}

	s.Restart(t)
	if s.Addr() != addr {
		t.Fatalf("Addr() after Restart = %s, want %s", s.Addr(), addr)
	}
	if newPID := pid(t, s); newPID == oldPID {
		t.Errorf("Restart kept process %d", oldPID)
	}
	// The pool drops its connection from before the restart.
	if got, _ := redis.String(s.Do(t, "PING"), nil); got != "PONG" {
		t.Fatalf("PING after Restart = %q, want PONG", got)
	}
	if _, err := redis.String(s.Do(t, "GET", "before"), nil); !errors.Is(err, redis.ErrNil) {
		t.Fatalf("GET before after Restart: err = %v, want redis.ErrNil (no data kept)", err)
	}

	// Stop then Start works the same way, and Start on a running server is a no-op.
	s.Do(t, "SET", "again", "1")
	s.Stop(t)
	s.Stop(t)
	s.Start(t)
	s.Start(t)
	if n, _ := redis.Int(s.Do(t, "DBSIZE"), nil); n != 0 || s.Addr() != addr {
		t.Fatalf("after Stop/Start: DBSIZE = %d on %s, want 0 on %s", n, s.Addr(), addr)
	}
}

func TestCleanupKillsServer(t *testing.T) {
	t.Parallel()
	var serverPID int
	var dir string
	t.Run("user", func(t *testing.T) {
		s := Start(t)
		serverPID, dir = pid(t, s), s.b.(*process).dir
	})
	if serverPID == 0 {
		t.Skip("no redis-server process was started")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", serverPID)); err == nil {
		t.Errorf("redis-server %d still exists after its test ended", serverPID)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s still exists (err %v)", dir, err)
	}
}

func TestParallelStarts(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var addrs []string
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := Start(t)
			s.Do(t, "SET", "i", i)
			if got, _ := redis.Int(s.Do(t, "GET", "i"), nil); got != i {
				t.Errorf("GET i = %d, want %d", got, i)
			}
			mu.Lock()
			addrs = append(addrs, s.Addr())
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(addrs)
	if len(slices.Compact(addrs)) != 8 {
		t.Fatalf("8 parallel servers share addresses: %v", addrs)
	}
}

func TestShared(t *testing.T) {
	t.Parallel()
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatalf("Shared returned two servers: %s and %s", a.Addr(), b.Addr())
	}
	if got, _ := redis.String(a.Do(t, "PING"), nil); got != "PONG" {
		t.Fatalf("PING = %q, want PONG", got)
	}
	// The server must outlive this test: RunMain stops it, and TestMain
	// checks that no redis-server remains afterwards.
}

func TestRedisURL(t *testing.T) {
	first := Start(t)
	first.Do(t, "SET", "from-first", "yes")
	before := len(redisChildren())

	t.Setenv("REDIS_URL", first.URL())
	s := Start(t)
	if s.Addr() != first.Addr() || s.URL() != first.URL() {
		t.Fatalf("with REDIS_URL: Addr %s URL %s, want %s %s", s.Addr(), s.URL(), first.Addr(), first.URL())
	}
	if s.b != nil {
		t.Fatalf("with REDIS_URL: backend %T, want none", s.b)
	}
	if after := len(redisChildren()); after != before {
		t.Fatalf("with REDIS_URL: %d redis-server children, had %d", after, before)
	}
	if got, _ := redis.String(s.Do(t, "GET", "from-first"), nil); got != "yes" {
		t.Fatalf("GET from-first through REDIS_URL = %q, want yes", got)
	}

	for name, op := range map[string]func(testing.TB){"Stop": s.Stop, "Start": s.Start, "Restart": s.Restart} {
		r := record(t, op)
		if r.kind != "skip" || !strings.Contains(r.msg, "REDIS_URL") || !strings.Contains(r.msg, name) {
			t.Errorf("%s with REDIS_URL: %s %q, want a skip naming %s and REDIS_URL", name, r.kind, r.msg, name)
		}
	}
	if got, _ := redis.String(first.Do(t, "PING"), nil); got != "PONG" {
		t.Fatalf("the REDIS_URL server stopped answering: %q", got)
	}
}

func TestRedisURLNotAnswering(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")
	t.Setenv("TRYPEMA_REQUIRE_REDIS", "")
	r := record(t, func(tb testing.TB) { Start(tb) })
	if r.kind != "fatal" || !strings.Contains(r.msg, "REDIS_URL=redis://127.0.0.1:1/0") {
		t.Fatalf("Start with a dead REDIS_URL: %s %q, want a failure naming REDIS_URL", r.kind, r.msg)
	}
}

func TestNoRedisAvailable(t *testing.T) {
	for _, tc := range []struct{ require, want string }{{"", "skip"}, {"1", "fatal"}} {
		t.Run("TRYPEMA_REQUIRE_REDIS="+tc.require, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("REDIS_URL", "")
			t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
			t.Setenv("TRYPEMA_REQUIRE_REDIS", tc.require)
			before := len(redisChildren())

			r := record(t, func(tb testing.TB) { Start(tb) })
			if r.kind != tc.want {
				t.Fatalf("Start reported %q (%q), want %s", r.kind, r.msg, tc.want)
			}
			for _, want := range []string{"apt-get install redis-server", "REDIS_URL"} {
				if !strings.Contains(r.msg, want) {
					t.Errorf("message %q lacks %q", r.msg, want)
				}
			}
			if r.finished {
				t.Error("the test went on after Start gave up")
			}
			if after := len(redisChildren()); after != before {
				t.Errorf("%d redis-server children, had %d", after, before)
			}
		})
	}
}

// recorder is a testing.TB whose Skip and Fatal families record the call
// and end the goroutine, as the real ones do, without touching the test.
type recorder struct {
	testing.TB
	kind, msg string
	finished  bool
}

func (r *recorder) Helper()                   {}
func (r *recorder) Skip(args ...any)          { r.end("skip", fmt.Sprint(args...)) }
func (r *recorder) Skipf(f string, a ...any)  { r.end("skip", fmt.Sprintf(f, a...)) }
func (r *recorder) SkipNow()                  { r.end("skip", "") }
func (r *recorder) Fatal(args ...any)         { r.end("fatal", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.end("fatal", fmt.Sprintf(f, a...)) }
func (r *recorder) FailNow()                  { r.end("fatal", "") }

func (r *recorder) end(kind, msg string) {
	r.kind, r.msg = kind, msg
	runtime.Goexit()
}

// record runs fn with a recorder in its own goroutine and returns what it saw.
func record(t *testing.T, fn func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
		r.finished = true
	}()
	<-done
	return r
}
