package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/bench"
)

// redisCost is what one Redis-backed library costs the server.
type redisCost struct {
	lib bench.RedisLib

	// After one call on each of oneKeys keys: the smallest live state.
	oneKeys         int
	oneBytesPerKey  float64
	oneRedisPerKeys float64 // Redis keys per limited key

	// After calls on fullKeys keys in every bucket of a window.
	fullKeys        int
	fullBytesPerKey float64
	fullBuckets     float64 // Trypema-Go's buckets per key (0 for peers)
	fullDecisions   int64

	// The commands the server ran during the busy window.
	commands []commandCost
}

type commandCost struct {
	name        string
	perDecision float64 // calls per decision
	usecPerCall float64
	topLevel    bool // sent by the client (a script call), not run inside a script
}

// memoryLimit is the limit of the one-call memory measurement: 6 per
// minute, long enough that no library's key expires while 10,000 keys are
// written and measured (redis_rate's key lives one emission interval, 10 s
// here; the others' a window).
var memoryLimit = bench.Limit{Name: "memory", Count: 6, Window: time.Minute}

// The busy-window measurement: fullKeys keys, each called once in every
// bucket of a 2 s window cut into fullBuckets buckets of 20 ms, so that
// Trypema-Go holds the 100 buckets per key that its default 10 s window
// with 100 ms buckets holds for a key busy all the time. The peers' state
// does not grow with traffic.
const (
	fullKeys    = 50
	fullBuckets = 100
	fullWindow  = 2 * time.Second
)

func measureRedis(ctx context.Context, env *bench.Env, oneKeys int) ([]redisCost, error) {
	var costs []redisCost
	for _, lib := range bench.RedisLibs {
		c := redisCost{lib: lib, oneKeys: oneKeys, fullKeys: fullKeys}
		if err := c.measureOne(ctx, env); err != nil {
			return nil, fmt.Errorf("%s: %w", lib.Name, err)
		}
		if err := c.measureFull(ctx, env); err != nil {
			return nil, fmt.Errorf("%s: %w", lib.Name, err)
		}
		costs = append(costs, c)
	}
	return costs, env.Flush()
}

func (c *redisCost) measureOne(ctx context.Context, env *bench.Env) error {
	if err := env.Flush(); err != nil {
		return err
	}
	lim, err := c.lib.New(env, memoryLimit)
	if err != nil {
		return err
	}
	defer lim.Close()
	if err := bench.Each(ctx, lim, bench.Keys(c.oneKeys), 16); err != nil {
		return err
	}
	mem, err := env.KeyMemory(c.lib.Pattern)
	if err != nil {
		return err
	}
	var limited int
	c.oneBytesPerKey, limited = perLimitedKey(mem)
	if limited != c.oneKeys {
		return fmt.Errorf("found the state of %d keys after writing %d", limited, c.oneKeys)
	}
	c.oneRedisPerKeys = float64(len(mem)) / float64(limited)
	return nil
}

// perLimitedKey sums the Redis keys' memory by the limited key they belong
// to (Trypema-Go's keys share the {key} hash tag) and returns the average
// and how many limited keys there were.
func perLimitedKey(mem map[string]int64) (float64, int) {
	var total int64
	limited := map[string]bool{}
	for k, n := range mem {
		total += n
		if i := strings.IndexByte(k, '{'); i >= 0 {
			if j := strings.IndexByte(k[i:], '}'); j >= 0 {
				k = k[i : i+j+1]
			}
		}
		limited[k] = true
	}
	if len(limited) == 0 {
		return 0, 0
	}
	return float64(total) / float64(len(limited)), len(limited)
}

func (c *redisCost) measureFull(ctx context.Context, env *bench.Env) error {
	if err := env.Flush(); err != nil {
		return err
	}
	startMs := time.Now().UnixMilli()
	clock := trypema.NewManualClock(startMs)
	l := bench.Limit{Name: "busy", Count: bench.OpenRedis.Count * int64(fullWindow/time.Second),
		Window: fullWindow, Buckets: fullBuckets, Clock: clock}
	lim, err := c.lib.New(env, l)
	if err != nil {
		return err
	}
	defer lim.Close()
	keys := bench.Keys(c.fullKeys)
	if err := env.ResetStats(); err != nil {
		return err
	}
	// Trypema-Go's clock steps one bucket per round, so that every round
	// opens a new bucket on every key, for a window and a fifth: the
	// oldest buckets have expired and each key holds a full window. The
	// peers run on real time; their state does not depend on it.
	bucketMs := (l.Window / fullBuckets).Milliseconds()
	for r := range fullBuckets + fullBuckets/5 {
		clock.Set(startMs + int64(r)*bucketMs)
		if err := bench.Each(ctx, lim, keys, 16); err != nil {
			return err
		}
		c.fullDecisions += int64(len(keys))
	}
	stats, err := env.CommandStats()
	if err != nil {
		return err
	}
	mem, err := env.KeyMemory(c.lib.Pattern)
	if err != nil {
		return err
	}
	c.fullBytesPerKey, _ = perLimitedKey(mem)
	if c.lib.Ours {
		if c.fullBuckets, err = averageListLen(env, strings.TrimSuffix(c.lib.Pattern, "*")+"*:buckets"); err != nil {
			return err
		}
	}
	for name, s := range stats {
		if strings.HasPrefix(name, "config") || name == "info" || name == "flushdb" || name == "scan" ||
			name == "memory|usage" || name == "ping" || name == "client|setinfo" || name == "hello" ||
			name == "select" || name == "script|load" {
			continue // ours, or the clients' connection and script set-up: not per decision
		}
		c.commands = append(c.commands, commandCost{
			name:        name,
			perDecision: float64(s.Calls) / float64(c.fullDecisions),
			usecPerCall: s.UsecPerCall,
			topLevel:    slices.Contains(bench.ScriptCommands, name),
		})
	}
	sort.Slice(c.commands, func(i, j int) bool {
		a, b := c.commands[i], c.commands[j]
		if a.topLevel != b.topLevel {
			return a.topLevel
		}
		return a.name < b.name
	})
	return nil
}

// insideUsecPerDecision is the time of the commands run inside the
// scripts, per decision: the part of the server time that is Redis
// commands rather than Lua.
func (c redisCost) insideUsecPerDecision() float64 {
	var t float64
	for _, cc := range c.commands {
		if !cc.topLevel {
			t += cc.perDecision * cc.usecPerCall
		}
	}
	return t
}

// serverUsecPerDecision is the script commands' time per decision during
// the busy window.
func (c redisCost) serverUsecPerDecision() float64 {
	var t float64
	for _, cc := range c.commands {
		if cc.topLevel {
			t += cc.perDecision * cc.usecPerCall
		}
	}
	return t
}

func averageListLen(env *bench.Env, pattern string) (float64, error) {
	conn := env.Pool.Get()
	defer conn.Close()
	var total, n int64
	cursor := "0"
	for {
		v, err := redigo.Values(conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return 0, err
		}
		cursor, _ = redigo.String(v[0], nil)
		names, _ := redigo.Strings(v[1], nil)
		for _, k := range names {
			l, err := redigo.Int64(conn.Do("LLEN", k))
			if err != nil {
				return 0, err
			}
			total += l
			n++
		}
		if cursor == "0" {
			break
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("no keys match %s", pattern)
	}
	return float64(total) / float64(n), nil
}
