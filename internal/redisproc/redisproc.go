// Package redisproc starts a throwaway redis-server: a child process on a
// free loopback port, with no persistence (--save "" --appendonly no) and
// its own temporary directory, for programs that want a real Redis without
// one being set up (the trypema demo). On Linux the server runs in its own
// process group and gets SIGKILL when the process that started it dies, so
// no server outlives a crashed or killed parent.
//
// It is not test code: it imports nothing from package testing, so commands
// and test helpers alike can use it.
package redisproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// ErrNotInstalled reports that no redis-server binary was found on PATH.
var ErrNotInstalled = errors.New("redisproc: redis-server is not on PATH " +
	"(Debian/Ubuntu: sudo apt-get install redis-server)")

// ErrPortTaken marks a start that lost its port to another process. Start
// with Port 0 then picks another port itself; with a fixed Port the caller
// decides whether to try again.
var ErrPortTaken = errors.New("port already in use")

// readyTimeout bounds how long a fresh server may take to answer.
const readyTimeout = 10 * time.Second

// Config says how to start the server. The zero value is ready to use.
type Config struct {
	// Bin is the redis-server binary; empty means the one on PATH.
	Bin string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// Args are extra arguments for redis-server, after the defaults.
	Args []string
}

// Server is a running redis-server child process. Stop it when done.
type Server struct {
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has been reaped
	out  *logBuffer

	stopOnce sync.Once
}

// Start launches redis-server on 127.0.0.1 as cfg says and returns once
// that very process answers. ctx bounds the wait; cancelling it later does
// not stop the server (Stop does). Without a binary the error is
// ErrNotInstalled.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin := cfg.Bin
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, ErrNotInstalled
		}
	}
	dir, err := os.MkdirTemp("", "redisproc-")
	if err != nil {
		return nil, fmt.Errorf("redisproc: %w", err)
	}
	if cfg.Port != 0 {
		s, err := launch(ctx, bin, dir, cfg.Port, cfg.Args)
		if err != nil {
			_ = os.RemoveAll(dir)
		}
		return s, err
	}
	// Another process may take the probed port before redis-server binds
	// it; then pick another one.
	for range 5 {
		port, perr := freePort()
		if perr != nil {
			err = perr
			break
		}
		var s *Server
		if s, err = launch(ctx, bin, dir, port, cfg.Args); err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrPortTaken) {
			break
		}
	}
	_ = os.RemoveAll(dir)
	return nil, err
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Dir returns the server's temporary directory, removed by Stop.
func (s *Server) Dir() string { return s.dir }

// Output returns what the server has written so far (its first 64 KiB).
func (s *Server) Output() string { return s.out.String() }

// Stop kills the server, reaps it and removes its directory. It is safe
// to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		killProcess(s.cmd.Process)
		<-s.done
		_ = os.RemoveAll(s.dir)
	})
}

func launch(ctx context.Context, bin, dir string, port int, extra []string) (*Server, error) {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	s := &Server{port: port, dir: dir, out: &logBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append(args, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = sysProcAttr()
	s.cmd.WaitDelay = time.Second
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("redisproc: starting %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	kill := func() { killProcess(s.cmd.Process); <-s.done }
	addr := s.Addr()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.done:
			err := fmt.Errorf("redisproc: redis-server on %s exited during startup (%v); its output:\n%s",
				addr, s.cmd.ProcessState, s.out)
			if strings.Contains(s.out.String(), "already in use") {
				err = fmt.Errorf("%w: %w", ErrPortTaken, err)
			}
			return nil, err
		case <-ctx.Done():
			kill()
			return nil, fmt.Errorf("redisproc: waiting for redis-server on %s: %w", addr, ctx.Err())
		default:
		}
		// A PING answered by another server on the port would hide our
		// failed bind: the answer must come from our process.
		pid, err := serverPID(addr)
		if err == nil && pid == s.cmd.Process.Pid {
			return s, nil
		}
		if err == nil {
			kill()
			return nil, fmt.Errorf("%w: %s is served by another redis-server (pid %d)", ErrPortTaken, addr, pid)
		}
		if time.Now().After(deadline) {
			kill()
			return nil, fmt.Errorf("redisproc: redis-server on %s did not answer within %v (last error: %v); its output:\n%s",
				addr, readyTimeout, err, s.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverPID asks the server at addr for its process id.
func serverPID(addr string) (int, error) {
	c, err := redis.Dial("tcp", addr,
		redis.DialConnectTimeout(250*time.Millisecond),
		redis.DialReadTimeout(250*time.Millisecond),
		redis.DialWriteTimeout(250*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "server"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// freePort finds a free loopback port by listening on port 0.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer keeps the first 64 KiB of the server's output, where startup
// failures are reported.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
