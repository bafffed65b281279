package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	redigo "github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/hybrid"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// poolSize bounds each client's connections; above the 16 callers of the
// widest benchmark so that no caller waits for a connection.
const poolSize = 32

// Env is one Redis reached through both client libraries the peers need:
// redigo (Trypema-Go's client) and go-redis (redis_rate, ulule).
type Env struct {
	URL  string
	Pool *redigo.Pool
	RDB  *goredis.Client
}

// NewEnv connects to the server at url (redis://host:port/db).
func NewEnv(url string) (*Env, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("bench: REDIS_URL %q: %w", url, err)
	}
	opt.PoolSize, opt.MinIdleConns = poolSize, 0
	e := &Env{
		URL: url,
		Pool: &redigo.Pool{
			MaxIdle: poolSize, MaxActive: poolSize, Wait: true, IdleTimeout: time.Minute,
			Dial: func() (redigo.Conn, error) { return redigo.DialURL(url) },
		},
		RDB: goredis.NewClient(opt),
	}
	if _, err := e.Do("PING"); err != nil {
		e.Close()
		return nil, fmt.Errorf("bench: Redis at %s: %w", url, err)
	}
	return e, nil
}

// Close closes both clients' connections.
func (e *Env) Close() {
	_ = e.Pool.Close()
	_ = e.RDB.Close()
}

// Do runs one command on a pooled connection.
func (e *Env) Do(cmd string, args ...any) (any, error) {
	c := e.Pool.Get()
	defer c.Close()
	return c.Do(cmd, args...)
}

// Flush empties the database, so that each row starts from nothing.
func (e *Env) Flush() error {
	_, err := e.Do("FLUSHDB")
	return err
}

// ResetStats zeroes INFO commandstats.
func (e *Env) ResetStats() error {
	_, err := e.Do("CONFIG", "RESETSTAT")
	return err
}

// CmdStat is one line of INFO commandstats.
type CmdStat struct {
	Calls        int64
	Usec         int64
	UsecPerCall  float64
	RejectedCall int64
	FailedCalls  int64
}

// CommandStats reads INFO commandstats, by lower-case command name
// ("evalsha", "lrange", "config|resetstat").
func (e *Env) CommandStats() (map[string]CmdStat, error) {
	info, err := redigo.String(e.Do("INFO", "commandstats"))
	if err != nil {
		return nil, err
	}
	stats := map[string]CmdStat{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		var s CmdStat
		for _, f := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "calls":
				s.Calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				s.Usec, _ = strconv.ParseInt(v, 10, 64)
			case "usec_per_call":
				s.UsecPerCall, _ = strconv.ParseFloat(v, 64)
			case "rejected_calls":
				s.RejectedCall, _ = strconv.ParseInt(v, 10, 64)
			case "failed_calls":
				s.FailedCalls, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		stats[name] = s
	}
	return stats, nil
}

// ScriptCommands are the commands a client sends to run a script. Every
// Redis-backed library here decides with one script call, so their time is
// the server's time per decision; Redis 7 also lists the commands a script
// runs inside it, which are part of that time and not added again.
var ScriptCommands = []string{"evalsha", "evalsha_ro", "eval", "eval_ro", "fcall", "fcall_ro"}

// ScriptUsec sums the server time and calls of ScriptCommands.
func ScriptUsec(stats map[string]CmdStat) (usec, calls int64) {
	for _, c := range ScriptCommands {
		usec += stats[c].Usec
		calls += stats[c].Calls
	}
	return usec, calls
}

// KeyMemory returns MEMORY USAGE (all samples) of every key matching
// pattern. Keys that expire while it runs are left out.
func (e *Env) KeyMemory(pattern string) (map[string]int64, error) {
	c := e.Pool.Get()
	defer c.Close()
	mem := map[string]int64{}
	cursor := "0"
	for {
		v, err := redigo.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return nil, err
		}
		cursor, _ = redigo.String(v[0], nil)
		names, _ := redigo.Strings(v[1], nil)
		for _, k := range names {
			n, err := redigo.Int64(c.Do("MEMORY", "USAGE", k, "SAMPLES", 0))
			if err == redigo.ErrNil {
				continue
			}
			if err != nil {
				return nil, err
			}
			mem[k] = n
		}
		if cursor == "0" {
			return mem, nil
		}
	}
}

// RedisLib is a Redis-backed library: a Lib and where its keys live.
type RedisLib struct {
	Lib
	// Pattern matches every Redis key the library writes (SCAN MATCH).
	Pattern string
}

// RedisLibs are the Redis-backed libraries, Trypema-Go's first.
var RedisLibs = []RedisLib{
	{
		Lib: Lib{
			Name: "trypema-absolute", Ours: true,
			Algorithm: "exact sliding window, Lua (a LIST of buckets and a HASH per key)",
			WarmFor:   trypemaWarm,
			New: func(env *Env, l Limit) (Limiter, error) {
				lim, err := client.NewAbsolute(env.Pool, TrypemaOptions(l)...)
				return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
			},
		},
		Pattern: "bench:v1:abs:*",
	},
	{
		Lib: Lib{
			Name: "trypema-suppressed", Ours: true,
			Algorithm: "sliding window with suppression, Lua (a LIST of buckets and a HASH per key)",
			WarmFor:   trypemaWarm,
			New: func(env *Env, l Limit) (Limiter, error) {
				lim, err := client.NewSuppressed(env.Pool, TrypemaOptions(l)...)
				return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
			},
		},
		Pattern: "bench:v1:sup:*",
	},
	{
		Lib: Lib{
			Name: "trypema-hybrid-absolute", Ours: true,
			Algorithm: "local decisions from budgets reserved in Redis, synced every 10 ms (hybrid)",
			WarmFor:   trypemaWarm,
			New: func(env *Env, l Limit) (Limiter, error) {
				lim, err := hybrid.NewAbsolute(env.Pool, append(TrypemaOptions(l), trypema.WithPrefix("benchh")))
				return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
			},
		},
		Pattern: "benchh:v1:abs:*",
	},
	{
		Lib: Lib{
			Name: "trypema-hybrid-suppressed", Ours: true,
			Algorithm: "hybrid, suppressed strategy",
			WarmFor:   trypemaWarm,
			New: func(env *Env, l Limit) (Limiter, error) {
				lim, err := hybrid.NewSuppressed(env.Pool, append(TrypemaOptions(l), trypema.WithPrefix("benchh")))
				return trypemaLimiter{lim, trypema.Rate(l.PerSecond())}, err
			},
		},
		Pattern: "benchh:v1:sup:*",
	},
	{
		Lib: Lib{
			Name:      "redis_rate",
			Algorithm: "GCRA, Lua (one string per key)",
			New: func(env *Env, l Limit) (Limiter, error) {
				return redisRateLimiter{redis_rate.NewLimiter(env.RDB),
					redis_rate.Limit{Rate: int(l.Count), Burst: int(l.Count), Period: l.Window}}, nil
			},
		},
		Pattern: "rate:*",
	},
	{
		Lib: Lib{
			Name:      "ulule-redis",
			Algorithm: "fixed window counter, Lua INCRBY+PEXPIRE (one string per key)",
			New: func(env *Env, l Limit) (Limiter, error) {
				st, err := ulredis.NewStoreWithOptions(env.RDB, limiter.StoreOptions{Prefix: "ulule"})
				if err != nil {
					return nil, err
				}
				return ululeLimiter{limiter.New(st, limiter.Rate{Period: l.Window, Limit: l.Count})}, nil
			},
		},
		Pattern: "ulule:*",
	},
}

type redisRateLimiter struct {
	l     *redis_rate.Limiter
	limit redis_rate.Limit
}

func (r redisRateLimiter) Allow(ctx context.Context, key string) (bool, error) {
	res, err := r.l.Allow(ctx, key, r.limit)
	if err != nil {
		return false, err
	}
	return res.Allowed > 0, nil
}

func (r redisRateLimiter) Close() error { return nil }
