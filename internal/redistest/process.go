package redistest

import (
	"bytes"
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

// readyTimeout bounds how long a freshly started server may take to answer.
const readyTimeout = 10 * time.Second

// errPortTaken marks a start that failed because something else holds the
// port; a fresh start picks another port and tries again.
var errPortTaken = errors.New("port already in use")

// process is a throwaway redis-server child process on a loopback port.
type process struct {
	bin  string
	dir  string // temporary working directory, removed by close
	port int    // 0 until the first successful start; kept for restarts

	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed once cmd has been waited for
	out  *logBuffer
}

func (p *process) start() (string, error) {
	if p.dir == "" {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			return "", err
		}
		p.dir = dir
	}
	if p.port != 0 {
		// Restart on the same port: the old socket is gone once the old
		// process has been waited for, so only an outsider can hold it.
		var err error
		for range 5 {
			if err = p.launch(p.port); !errors.Is(err, errPortTaken) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return p.addr(), err
	}
	// Another process may bind the free port between our probe and
	// redis-server's bind; pick another port and try again.
	var err error
	for range 5 {
		var port int
		if port, err = reservePort(); err != nil {
			return "", err
		}
		if err = p.launch(port); err == nil {
			p.port = port
			return p.addr(), nil
		}
		releasePort(port)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return "", err
}

func (p *process) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// launch starts redis-server on port and waits until that very process
// answers (INFO's process_id must match: a PING answered by some other
// server on the port would hide our failed bind).
func (p *process) launch(port int) error {
	p.out = &logBuffer{}
	cmd := exec.Command(p.bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", p.dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			p.cmd = nil
			err := fmt.Errorf("redis-server on %s exited during startup (%v); its output:\n%s", addr, cmd.ProcessState, p.out)
			if strings.Contains(p.out.String(), "already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		pid, err := serverPID(addr)
		if err == nil && pid == cmd.Process.Pid {
			return nil
		}
		if err == nil {
			p.stop()
			return fmt.Errorf("%w: %s is served by another redis-server (pid %d)", errPortTaken, addr, pid)
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("redis-server on %s did not answer within %v (last error: %v); its output:\n%s", addr, readyTimeout, err, p.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server and reaps it, so that no zombie remains.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	killProcess(p.cmd.Process)
	<-p.done
	p.cmd = nil
}

func (p *process) close() {
	p.stop()
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	if p.port != 0 {
		releasePort(p.port)
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

// ports holds the ports of this binary's servers, including stopped ones
// waiting for a restart, so that a parallel Start never picks them.
var ports = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

// reservePort finds a free loopback port by listening on port 0.
func reservePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !ports.used[port] {
			ports.used[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port found")
}

func releasePort(port int) {
	ports.Lock()
	delete(ports.used, port)
	ports.Unlock()
}

// logBuffer collects the server's output for error messages; it keeps the
// first 64 KiB, which is where startup failures are reported.
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
