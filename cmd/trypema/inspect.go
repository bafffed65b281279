package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
)

// inspectBuckets is how many buckets inspect shows at each end of a long
// list.
const inspectBuckets = 10

func inspectCommand() *command {
	var rf redisFlags
	var strategy string
	var window, factorCache time.Duration
	c := &command{
		name:    "inspect",
		summary: "inspect [flags] KEY",
		doc: `Show a key's state in Redis for people: its Redis keys and their TTLs,
the sticky rate, the limit (capacity, or soft and hard caps), the live
totals, the suppression factor, and every bucket with its age and when it
leaves the window. Times are relative to the Redis server's clock. Nothing
is written (the totals come from the read-only *_get scripts).

The window is not stored in Redis; by default it is worked out from the
TTL, which the scripts set to the time until the newest call leaves the
window. Pass -window when that is not possible (a key written with an
explicit now_ms from a skewed clock).
`,
		flags: func(fs *flag.FlagSet) {
			rf.register(fs)
			fs.StringVar(&strategy, "strategy", "auto", "absolute (abs), suppressed (sup), or auto: whichever exist")
			fs.DurationVar(&window, "window", 0, "the limiter's window (default: inferred from the TTL)")
			fs.DurationVar(&factorCache, "factor-cache", trypema.DefaultFactorCacheTTL, "suppressed: the limiter's factor cache TTL")
		},
	}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		key, code, ok := c.parseKey(args, stdout, stderr)
		if !ok {
			return code
		}
		strategies := []string{"abs", "sup"}
		if strategy != "auto" {
			s, ok := strategyName(strategy)
			if !ok {
				return usageErr(stderr, c.name, "-strategy %q: use absolute, suppressed or auto", strategy)
			}
			strategies = []string{s}
		}
		if err := trypema.ValidatePrefix(rf.prefix); err != nil {
			return failure(stderr, c.name, err)
		}
		if window != 0 {
			if _, err := trypema.NewConfig(trypema.WithWindow(window)); err != nil {
				return failure(stderr, c.name, err)
			}
		}
		if factorCache < time.Millisecond {
			return usageErr(stderr, c.name, "-factor-cache %v: must be at least 1ms", factorCache)
		}
		ctx := context.Background()
		pool, err := rf.connect(ctx)
		if err != nil {
			return failure(stderr, c.name, err)
		}
		defer pool.Close()
		found := 0
		for _, s := range strategies {
			st, err := readState(ctx, pool, rf.prefix, s, key, window, factorCache)
			if err != nil {
				return failure(stderr, c.name, err)
			}
			if st == nil {
				continue
			}
			if found > 0 {
				fmt.Fprintln(stdout)
			}
			found++
			st.print(stdout)
		}
		if found == 0 {
			var names []string
			for _, s := range strategies {
				names = append(names, strings.TrimSuffix(client.Keys(rf.prefix, s, key)[0], "buckets")+"*")
			}
			fmt.Fprintf(stdout, "no state for key %q under prefix %q: none of %s exists\n"+
				"(a key without live usage has no state; check -prefix and -redis)\n", key, rf.prefix, strings.Join(names, ", "))
		}
		return exitOK
	}
	return c
}

type bucket struct {
	start, last, count, declined int64
}

// keyState is what inspect reads about one strategy's state of a key.
type keyState struct {
	key, prefix, strategy string
	keys                  [2]string
	types                 [2]string
	ttl                   [2]int64 // PTTL: -2 missing, -1 no TTL
	now                   int64    // the server's clock, ms
	nBuckets              int64
	head, tail            []bucket // the oldest and newest buckets (tail empty when all fit in head)
	meta                  map[string]string
	windowMs              int64
	windowHow             string
	snap                  trypema.Snapshot
	snapErr               error
}

func readState(ctx context.Context, pool *redis.Pool, prefix, strategy, key string, window, factorCache time.Duration) (*keyState, error) {
	c, err := pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := &keyState{key: key, prefix: prefix, strategy: strategy, keys: client.Keys(prefix, strategy, key)}
	for i, k := range st.keys {
		if st.types[i], err = redis.String(redis.DoContext(c, ctx, "TYPE", k)); err != nil {
			return nil, err
		}
	}
	if st.types[0] == "none" && st.types[1] == "none" {
		return nil, nil
	}
	t, err := redis.Int64s(redis.DoContext(c, ctx, "TIME"))
	if err != nil || len(t) != 2 {
		return nil, fmt.Errorf("TIME: %v", err)
	}
	st.now = t[0]*1000 + t[1]/1000
	for i, k := range st.keys {
		if st.ttl[i], err = redis.Int64(redis.DoContext(c, ctx, "PTTL", k)); err != nil {
			return nil, err
		}
	}
	if st.types[0] == "list" {
		if st.head, st.tail, st.nBuckets, err = readBuckets(ctx, c, st.keys[0]); err != nil {
			return nil, err
		}
	}
	if st.types[1] == "hash" {
		if st.meta, err = redis.StringMap(redis.DoContext(c, ctx, "HGETALL", st.keys[1])); err != nil {
			return nil, err
		}
	}
	st.windowMs, st.windowHow = window.Milliseconds(), "from -window"
	if window == 0 {
		st.windowMs, st.windowHow = st.inferWindow()
	}
	scripts := client.NewScripts(pool)
	if strategy == "abs" {
		r, err := scripts.AbsoluteGet(ctx, st.keys, client.AbsoluteGetArgs{WindowMs: st.windowMs})
		st.snap, st.snapErr = snapshotOf(client.SuppressedGetReply(r)), err
	} else {
		r, err := scripts.SuppressedGet(ctx, st.keys, client.SuppressedGetArgs{WindowMs: st.windowMs, FactorCacheMs: factorCache.Milliseconds()})
		st.snap, st.snapErr = snapshotOf(r), err
	}
	if st.snapErr != nil && !isInputError(st.snapErr) && !strings.Contains(st.snapErr.Error(), "TRYPEMA_") {
		return nil, st.snapErr // Redis failed; a corrupt state is shown instead
	}
	return st, nil
}

func snapshotOf(r client.SuppressedGetReply) trypema.Snapshot {
	return trypema.Snapshot{Exists: r.Exists == 1, Total: r.Total, Declined: r.Declined, Limit: r.Limit,
		HardLimit: r.Hard, Rate: trypema.Rate(r.Rate), SuppressionFactor: r.Factor}
}

func readBuckets(ctx context.Context, c redis.Conn, key string) (head, tail []bucket, n int64, err error) {
	if n, err = redis.Int64(redis.DoContext(c, ctx, "LLEN", key)); err != nil {
		return nil, nil, 0, err
	}
	parse := func(lo, hi int64) ([]bucket, error) {
		vals, err := redis.Strings(redis.DoContext(c, ctx, "LRANGE", key, lo, hi))
		if err != nil {
			return nil, err
		}
		out := make([]bucket, 0, len(vals))
		for _, v := range vals {
			f := strings.Split(v, ":")
			var b [4]int64
			ok := len(f) == 4
			for i := 0; ok && i < 4; i++ {
				b[i], err = strconv.ParseInt(f[i], 10, 64)
				ok = err == nil
			}
			if !ok {
				return nil, fmt.Errorf("bucket %q in %s is not start:last:count:declined; the state was not written by the trypema scripts", v, key)
			}
			out = append(out, bucket{b[0], b[1], b[2], b[3]})
		}
		return out, nil
	}
	if n <= 3*inspectBuckets {
		head, err = parse(0, -1)
		return head, nil, n, err
	}
	if head, err = parse(0, inspectBuckets-1); err != nil {
		return nil, nil, 0, err
	}
	tail, err = parse(-inspectBuckets, -1)
	return head, tail, n, err
}

// inferWindow works the window out from the TTL: every write sets it to
// W − (now − last of the newest bucket), so W = PTTL + (now − last).
func (st *keyState) inferWindow() (int64, string) {
	newest := st.newest()
	if newest == nil || st.ttl[0] < 0 {
		return trypema.DefaultWindow.Milliseconds(), "the default; not inferable without buckets and a TTL, pass -window"
	}
	w := st.ttl[0] + (st.now - newest.last)
	// PTTL and TIME are read a moment apart: snap to whole seconds nearby.
	if s := int64(math.Round(float64(w)/1000)) * 1000; s > 0 && abs(w-s) <= 5 {
		w = s
	}
	if w < 1 {
		return trypema.DefaultWindow.Milliseconds(), "the default; the TTL does not fit the buckets, pass -window"
	}
	return w, "inferred from the TTL; -window overrides"
}

func (st *keyState) newest() *bucket {
	switch {
	case len(st.tail) > 0:
		return &st.tail[len(st.tail)-1]
	case len(st.head) > 0:
		return &st.head[len(st.head)-1]
	}
	return nil
}

// units writes n and noun, plural unless n is 1.
func units(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (st *keyState) print(w io.Writer) {
	name := map[string]string{"abs": "absolute", "sup": "suppressed"}[st.strategy]
	fmt.Fprintf(w, "key %q: %s strategy, prefix %q\n", st.key, name, st.prefix)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, format string, a ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{label}, a...)...)
	}
	for i, label := range []string{"buckets key", "meta key"} {
		row(label, "%s  (%s, TTL %s)", st.keys[i], st.types[i], fmtTTL(st.ttl[i]))
	}
	row("window", "%s  (%s)", fmtDur(st.windowMs), st.windowHow)
	if st.snapErr != nil {
		row("state", "unreadable: %v", st.snapErr)
	}
	s := st.snap
	if st.snapErr == nil && !s.Exists {
		row("state", "no live usage: everything has left the %s window (Redis drops the keys when their TTL ends)", fmtDur(st.windowMs))
	}
	if s.Exists {
		row("rate", "%s  (sticky: stored by the call that created the state)", fmtRate(s.Rate))
		if st.strategy == "abs" {
			row("limit", "%d units per %s window", s.Limit, fmtDur(st.windowMs))
			row("total", "%s, %d remaining", units(s.Total, "live unit"), max(0, s.Limit-s.Total))
		} else {
			row("limit", "soft cap %d, hard cap %d units per %s window", s.Limit, s.HardLimit, fmtDur(st.windowMs))
			row("total", "%s observed: %d accepted, %d declined", units(s.Total, "live unit"), s.Accepted(), s.Declined)
			row("factor", "%s  (probability that a call above the soft cap is denied)%s",
				strconv.FormatFloat(s.SuppressionFactor, 'f', 4, 64), st.cachedFactor())
		}
	}
	if len(st.meta) > 0 {
		row("meta", "%s", fmtMeta(st.meta))
	}
	tw.Flush()
	st.printBuckets(w)
}

// cachedFactor describes the factor cache stored in the meta hash.
func (st *keyState) cachedFactor() string {
	f, at := st.meta["f"], st.meta["f_at"]
	if f == "" || at == "" {
		return ""
	}
	v, err1 := strconv.ParseFloat(f, 64)
	t, err2 := strconv.ParseInt(at, 10, 64)
	if err1 != nil || err2 != nil {
		return ""
	}
	return fmt.Sprintf("; cached %s, computed %s ago", strconv.FormatFloat(v, 'f', 4, 64), fmtDur(st.now-t))
}

func fmtMeta(m map[string]string) string {
	var parts []string
	for _, k := range []string{"rate", "soft", "hard", "total", "declined", "f", "f_at", "f_head"} {
		if v, ok := m[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	for k, v := range m {
		switch k {
		case "rate", "soft", "hard", "total", "declined", "f", "f_at", "f_head":
		default:
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func fmtTTL(ms int64) string {
	switch ms {
	case -2:
		return "key missing"
	case -1:
		return "none"
	}
	return fmtDur(ms)
}

func (st *keyState) printBuckets(w io.Writer) {
	if st.nBuckets == 0 {
		fmt.Fprintln(w, "  buckets  none")
		return
	}
	fmt.Fprintf(w, "  buckets  %d, oldest first; ages are the server clock minus the bucket's times\n", st.nBuckets)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t#\tstarted\tlast call\tcount\tdeclined\tleaves window in\t")
	line := func(i int64, b bucket) {
		leaves := st.windowMs - (st.now - b.last)
		left := fmtDur(leaves)
		if leaves <= 0 {
			left = "expired"
		}
		fmt.Fprintf(tw, "\t%d\t%s ago\t%s ago\t%d\t%d\t%s\t\n", i, fmtDur(st.now-b.start), fmtDur(st.now-b.last), b.count, b.declined, left)
	}
	for i, b := range st.head {
		line(int64(i+1), b)
	}
	if len(st.tail) > 0 {
		fmt.Fprintf(tw, "\t…\t%d more\t\t\t\t\t\n", st.nBuckets-int64(len(st.head)+len(st.tail)))
		for i, b := range st.tail {
			line(st.nBuckets-int64(len(st.tail))+int64(i)+1, b)
		}
	}
	tw.Flush()
}
