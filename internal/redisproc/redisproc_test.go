package redisproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func requireBinary(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("TRYPEMA_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server is not on PATH (TRYPEMA_REQUIRE_REDIS=1)")
		}
		t.Skip("redis-server is not on PATH; apt-get install redis-server")
	}
}

func TestStartStop(t *testing.T) {
	requireBinary(t)
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := redis.DialURL(s.URL())
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	if _, err := c.Do("SET", "k", "v"); err != nil {
		t.Error(err)
	}
	// No persistence: a throwaway server must not write dump files.
	if v, err := redis.Strings(c.Do("CONFIG", "GET", "save")); err != nil || v[1] != "" {
		t.Errorf("CONFIG GET save = %q, %v; want empty", v, err)
	}
	c.Close()
	dir := s.dir
	s.Stop()
	s.Stop() // idempotent
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s left behind: %v", dir, err)
	}
	c2, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(200*time.Millisecond))
	if err == nil {
		_, err = c2.Do("PING")
		c2.Close()
	}
	if err == nil {
		t.Error("server still answers after Stop")
	}
}

func TestPortTaken(t *testing.T) {
	requireBinary(t)
	a, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if b, err := Start(context.Background(), Config{Port: a.Port()}); err == nil {
		b.Stop()
		t.Fatal("second server on a taken port started")
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(context.Background(), Config{}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
}
