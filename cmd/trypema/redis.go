package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
)

// redisFlags are the flags of every command that talks to Redis.
type redisFlags struct {
	url    string
	prefix string
}

func (f *redisFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "redis", "", "Redis URL (default: $REDIS_URL, else "+defaultRedis+")")
	fs.StringVar(&f.prefix, "prefix", trypema.DefaultPrefix, "key prefix the limiters use")
}

// resolvedURL is -redis, else $REDIS_URL, else the local default.
func (f *redisFlags) resolvedURL() string {
	if f.url != "" {
		return f.url
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return defaultRedis
}

// connect returns a pool on the Redis of the flags, after checking that it
// answers, so that an unreachable server fails here with a clear message.
func (f *redisFlags) connect(ctx context.Context) (*redis.Pool, error) {
	return openPool(ctx, f.resolvedURL())
}

func openPool(ctx context.Context, url string) (*redis.Pool, error) {
	if !strings.HasPrefix(url, "redis://") && !strings.HasPrefix(url, "rediss://") {
		return nil, fmt.Errorf("%w: %q is not a Redis URL; use redis://host:port/db", trypema.ErrInvalidArg, url)
	}
	pool := &redis.Pool{
		MaxIdle:     64,
		IdleTimeout: time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.DialURL(url,
				redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(5*time.Second),
				redis.DialWriteTimeout(5*time.Second))
		},
	}
	c, err := pool.GetContext(ctx)
	if err == nil {
		_, err = redis.DoContext(c, ctx, "PING")
		c.Close()
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %v\n(start one with redis-server, or pass -redis URL / set REDIS_URL)", url, err)
	}
	return pool, nil
}

// rateValue is a flag holding a rate such as 10/s, 600/min or 1000/day.
type rateValue struct {
	rate trypema.Rate
	text string
}

func (v *rateValue) String() string { return v.text }

func (v *rateValue) Set(s string) error {
	r, err := parseRate(s)
	if err != nil {
		return err
	}
	v.rate, v.text = r, s
	return nil
}

// parseRate reads N/unit, unit one of s, min, h, d, w, mo (or their long
// names); a plain number is per second.
func parseRate(s string) (trypema.Rate, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q: want a number per unit, such as 10/s, 600/min, 5000/h or 1000/day", s)
	}
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "", "s", "sec", "second":
		return trypema.PerSecond(v)
	case "m", "min", "minute":
		return trypema.PerMinute(v)
	case "h", "hour":
		return trypema.PerHour(v)
	case "d", "day":
		return trypema.PerDay(v)
	case "w", "week":
		return trypema.PerWeek(v)
	case "mo", "month":
		return trypema.PerMonth(v)
	}
	return 0, fmt.Errorf("rate %q: unknown unit %q; use s, min, h, day, week or month", s, unit)
}

// fmtRate prints a rate in units per second, with few digits.
func fmtRate(r trypema.Rate) string {
	return strconv.FormatFloat(float64(r), 'g', 6, 64) + "/s"
}

// fmtDur prints a duration of milliseconds for people: 850ms, 1.25s, 2m3s.
func fmtDur(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms < 0:
		return "-" + fmtDur(-ms)
	case d < time.Second:
		return strconv.FormatInt(ms, 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) + "s"
	}
	return d.String()
}
