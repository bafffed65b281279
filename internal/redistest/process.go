package redistest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/trypema-go/trypema/internal/redisproc"
)

// process is a throwaway redis-server (started by redisproc) that can be
// stopped and started again on the same port, as fault-injection tests need.
type process struct {
	bin  string
	port int    // 0 until the first successful start; kept for restarts
	dir  string // the running server's temporary directory
	srv  *redisproc.Server
}

func (p *process) start() (string, error) {
	if p.port != 0 {
		// Restart on the same port: the old socket is gone once the old
		// process has been reaped, so only an outsider can hold it.
		var err error
		for range 5 {
			if err = p.launch(p.port); !errors.Is(err, redisproc.ErrPortTaken) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return p.addr(), err
	}
	// The port is reserved here rather than left to redisproc, so that no
	// parallel test picks the port of a server stopped for a restart.
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
		if !errors.Is(err, redisproc.ErrPortTaken) {
			break
		}
	}
	return "", err
}

func (p *process) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *process) launch(port int) error {
	srv, err := redisproc.Start(context.Background(), redisproc.Config{Bin: p.bin, Port: port})
	if err != nil {
		return err
	}
	p.srv, p.dir = srv, srv.Dir()
	return nil
}

// stop kills the server and reaps it, so that no zombie remains.
func (p *process) stop() {
	if p.srv != nil {
		p.srv.Stop()
		p.srv = nil
	}
}

func (p *process) close() {
	p.stop()
	if p.port != 0 {
		releasePort(p.port)
	}
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
