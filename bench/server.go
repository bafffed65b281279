package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	redigo "github.com/gomodule/redigo/redis"
)

// Server is the one redis-server all Redis-backed benchmarks share: the
// one REDIS_URL names, or a throwaway redis-server this package starts on
// a free loopback port without persistence.
type Server struct {
	// URL is redis://host:port/db, as REDIS_URL would give it.
	URL string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	dir    string
	out    *bytes.Buffer
}

// StartServer returns the server of REDIS_URL when it is set, or starts
// redis-server from PATH. The benchmarks flush the server's database, so
// REDIS_URL must name a throwaway one.
func StartServer() (*Server, error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return &Server{URL: u}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("bench: redis-server is not on PATH; install it " +
			"(Debian/Ubuntu: apt-get install redis-server, or run ./scripts/ensure-redis.sh) " +
			"or set REDIS_URL=redis://host:port/0 to a throwaway server")
	}
	dir, err := os.MkdirTemp("", "trypema-bench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 { // the free port may be taken between the probe and the bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", dir: dir, out: &bytes.Buffer{}}
		if lastErr = s.launch(bin, port); lastErr == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts redis-server on port and waits until it answers.
func (s *Server) launch(bin string, port int) error {
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "")
	out := &lockedBuffer{b: s.out}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-exited:
			return fmt.Errorf("bench: redis-server on %s exited during startup: %s", addr, out)
		default:
		}
		if c, err := redigo.Dial("tcp", addr, redigo.DialConnectTimeout(250*time.Millisecond)); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				s.cmd, s.exited = cmd, exited
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("bench: redis-server on %s did not answer within 10s: %s", addr, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops a server this package started; a REDIS_URL server is left
// running.
func (s *Server) Close() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
