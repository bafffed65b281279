package client_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/redistest"
)

// BenchmarkRedisInc compares Inc over loopback with the floor of any
// script call: EVALSHA of a script that only returns 1, on the same server
// at the same concurrency. server-µs/op is Redis's own time per call from
// INFO commandstats.
func BenchmarkRedisInc(b *testing.B) {
	srv := redistest.Start(b)
	pool := srv.Pool()
	pool.MaxIdle, pool.MaxActive = 32, 32
	noop, err := redis.String(srv.Do(b, "SCRIPT", "LOAD", "return 1"), nil)
	if err != nil {
		b.Fatal(err)
	}
	rate := trypema.MustPerSecond(1e9) // the admit path, not rejection
	opts := []trypema.Option{trypema.WithWindow(time.Second), trypema.WithPrefix("bench")}
	abs := newAbsolute(&testing.T{}, srv, opts...)
	sup := newSuppressed(&testing.T{}, srv, opts...)
	calls := map[string]func(key string) error{
		"noop": func(string) error {
			c := pool.Get()
			defer c.Close()
			_, err := c.Do("EVALSHA", noop, 0)
			return err
		},
		"absolute": func(key string) error { _, err := abs.Inc(ctx, key, rate, 1); return err },
		"suppressed": func(key string) error {
			_, err := sup.Inc(ctx, key, rate, 1)
			return err
		},
	}
	for _, name := range []string{"noop", "absolute", "suppressed"} {
		call := calls[name]
		for _, conns := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/conns=%d", name, conns), func(b *testing.B) {
				srv.Do(b, "CONFIG", "RESETSTAT")
				b.ReportAllocs()
				if conns == 1 {
					for i := 0; b.Loop(); i++ {
						if err := call("k" + strconv.Itoa(i&1023)); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism((conns + 1) / 2) // × GOMAXPROCS (2 here) goroutines
					b.RunParallel(func(pb *testing.PB) {
						for i := 0; pb.Next(); i++ {
							if err := call("k" + strconv.Itoa(i&1023)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(serverMicrosPerCall(b, srv), "server-µs/op")
			})
		}
	}
}

func serverMicrosPerCall(b *testing.B, srv *redistest.Server) float64 {
	info, _ := redis.String(srv.Do(b, "INFO", "commandstats"), nil)
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") {
			for _, f := range strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "cmdstat_evalsha:")), ",") {
				if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
					x, _ := strconv.ParseFloat(v, 64)
					return x
				}
			}
		}
	}
	return 0
}
