package redistest

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// dockerPool connects to the Docker engine named by DOCKER_HOST (or the
// default socket) and pings it with a short timeout, so that machines
// without an engine pay almost nothing for this fallback.
func dockerPool() (*dockertest.Pool, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := pool.Client.PingWithContext(ctx); err != nil {
		return nil, err
	}
	pool.MaxWait = time.Minute
	return pool, nil
}

// container is a redis:7 container bound to a loopback port of the host.
// Containers are not covered by the parent-death signal; they are labelled
// trypema.redistest=1 so that leftovers of a killed run can be found with
// docker ps --filter label=trypema.redistest.
type container struct {
	pool     *dockertest.Pool
	res      *dockertest.Resource // nil while stopped
	hostPort string               // "" until the first start; kept for restarts
}

func (c *container) start() (string, error) {
	res, err := c.pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "redis",
		Tag:        "7",
		Cmd:        []string{"redis-server", "--save", "", "--appendonly", "no"},
		Labels:     map[string]string{"trypema.redistest": "1"},
		PortBindings: map[docker.Port][]docker.PortBinding{
			"6379/tcp": {{HostIP: "127.0.0.1", HostPort: c.hostPort}},
		},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return "", fmt.Errorf("starting redis:7 container: %w", err)
	}
	c.res = res
	addr := res.GetHostPort("6379/tcp")
	err = c.pool.Retry(func() error {
		conn, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Do("PING")
		return err
	})
	if err != nil {
		c.stop()
		return "", fmt.Errorf("redis:7 container on %s did not answer: %w", addr, err)
	}
	_, c.hostPort, _ = net.SplitHostPort(addr)
	return addr, nil
}

func (c *container) stop() {
	if c.res != nil {
		_ = c.pool.Purge(c.res)
		c.res = nil
	}
}

func (c *container) close() { c.stop() }
