package lua_test

// These tests run each script of lua/v1 as the generator builds it (lib.lua,
// a newline, the body) on a real redis-server and compare every reply, and
// the state the scripts store, with internal/sliding, the Go twin of the
// algorithm, on random operation sequences.
//
// The twin runs each operation on a copy of its State and keeps the copy
// only when the script writes: read-only scripts, rejections, set_if misses,
// unchanged rates and errors write nothing in Redis (not even the removal of
// expired buckets), so the twin must not advance either.
//
// Each call goes, at random, through EVALSHA, EVAL_RO (read-only scripts)
// or FCALL/FCALL_RO of a Functions library that wraps every body the way
// the generator does, inside MULTI with both keys' PTTL and PERSIST: the
// TTLs are checked, then removed so that the real clock cannot expire keys
// of the simulated one. A write whose TTL is under 500 ms runs instead as
// the body wrapped in a function followed by the PTTL and PERSIST calls in
// the same script, where keys cannot expire.

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/internal/sliding"
)

var (
	flagSeqs = flag.Int("lua.seqs", 300, "random operation sequences per strategy")
	flagSeed = flag.Uint64("lua.seed", 1, "seed of the random operation sequences")
)

const maxCount = 1<<53 - 1

var scriptNames = []string{
	"absolute_inc", "absolute_is_allowed", "absolute_get",
	"suppressed_inc", "suppressed_factor", "suppressed_get",
	"set_rate_limit", "set_if", "delete",
}

type script struct {
	name     string
	src      string
	readonly bool
	header   []string // the --! lines
	ttlSrc   string   // the body as a function, then both keys' TTLs read and removed
	s        *redis.Script
}

var (
	scriptsOnce sync.Once
	scriptsMap  map[string]*script
	scriptsErr  error
)

// loadScripts builds each standalone script as lib.lua + "\n" + body.
func loadScripts(t testing.TB) map[string]*script {
	t.Helper()
	scriptsOnce.Do(func() {
		lib, err := os.ReadFile("v1/lib.lua")
		if err != nil {
			scriptsErr = err
			return
		}
		scriptsMap = map[string]*script{}
		for _, name := range scriptNames {
			body, err := os.ReadFile("v1/" + name + ".lua")
			if err != nil {
				scriptsErr = err
				return
			}
			sc := &script{name: name, src: string(lib) + "\n" + string(body)}
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "--!") {
					sc.header = append(sc.header, line)
				}
				if strings.HasPrefix(line, "--! readonly") {
					sc.readonly = strings.Fields(line)[2] == "true"
				}
			}
			sc.s = redis.NewScript(-1, sc.src) // the key count comes first
			sc.ttlSrc = string(lib) + "\nlocal function trypema_test_body()\n" + string(body) + "\nend\n" +
				"local r = trypema_test_body()\n" +
				"return {r, redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2]), redis.call('PERSIST', KEYS[1]), redis.call('PERSIST', KEYS[2])}"
			scriptsMap[name] = sc
		}
	})
	if scriptsErr != nil {
		t.Fatal(scriptsErr)
	}
	return scriptsMap
}

// run calls a script with EVALSHA (EVAL on NOSCRIPT), or EVAL_RO when ro.
func run(c redis.Conn, sc *script, ro bool, keys []string, args ...string) ([]interface{}, error) {
	ka := make([]interface{}, 0, 1+len(keys)+len(args))
	ka = append(ka, len(keys))
	for _, k := range keys {
		ka = append(ka, k)
	}
	for _, a := range args {
		ka = append(ka, a)
	}
	var v interface{}
	var err error
	if ro {
		v, err = c.Do("EVAL_RO", append([]interface{}{sc.src}, ka...)...)
	} else {
		v, err = sc.s.Do(c, ka...)
	}
	if err != nil {
		return nil, err
	}
	r, ok := v.([]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: reply %#v is not an array", sc.name, v)
	}
	return r, nil
}

// fl marks an expected float reply element, compared bit for bit.
type fl float64

func fi(v int64) string   { return strconv.FormatInt(v, 10) }
func ff(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// diffReply describes how got differs from want, or returns "".
func diffReply(got []interface{}, want []interface{}) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d elements %v, want %d %v", len(got), fmtReply(got), len(want), want)
	}
	for i, w := range want {
		g := got[i]
		switch w := w.(type) {
		case string:
			if b, ok := g.([]byte); !ok || string(b) != w {
				return fmt.Sprintf("element %d: got %v, want %q", i, fmtReply(got), w)
			}
		case int64:
			if v, ok := g.(int64); !ok || v != w {
				return fmt.Sprintf("element %d: got %v, want %d", i, fmtReply(got), w)
			}
		case fl:
			b, ok := g.([]byte)
			if !ok {
				return fmt.Sprintf("element %d: got %v, want float %v", i, fmtReply(got), float64(w))
			}
			v, err := strconv.ParseFloat(string(b), 64)
			if err != nil || math.Float64bits(v) != math.Float64bits(float64(w)) {
				return fmt.Sprintf("element %d: got %v, want float %s", i, fmtReply(got), ff(float64(w)))
			}
		default:
			return fmt.Sprintf("bad want element %T", w)
		}
	}
	return ""
}

func fmtReply(r []interface{}) string {
	parts := make([]string, len(r))
	for i, v := range r {
		switch v := v.(type) {
		case []byte:
			parts[i] = strconv.Quote(string(v))
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func codeOf(err error) string {
	switch {
	case errors.Is(err, trypema.ErrZeroCapacity):
		return "TRYPEMA_ZERO_CAPACITY"
	case errors.Is(err, trypema.ErrCountExceedsCapacity):
		return "TRYPEMA_COUNT_EXCEEDS_CAPACITY"
	}
	return "unexpected Go error " + err.Error()
}

// errCode returns the code of a script's error reply.
func errCode(err error) string {
	var re redis.Error
	if !errors.As(err, &re) {
		return ""
	}
	code, _, _ := strings.Cut(string(re), " ")
	return code
}

var comparators = []trypema.Comparator{trypema.Always, trypema.Eq, trypema.Ne, trypema.Lt, trypema.Le, trypema.Gt, trypema.Ge}
var modes = []trypema.HistoryMode{trypema.Replace, trypema.PreserveNewest, trypema.PreserveOldest}

// env is one random operation sequence on one key.
type env struct {
	t      *testing.T
	c      redis.Conn
	sc     map[string]*script
	rng    *rand.Rand
	p      sliding.Params
	st     sliding.State
	kb, km string
	now    int64
	rate   float64 // the sequence's usual rate
	log    []string
	ops    int
	many   bool // keep many buckets: small counts, no set_if replace or delete

	clockExpired bool // the real clock expired a key with a TTL of 1 ms
	mirrored     int  // checked states whose meta mirrors the list's ends
}

func (e *env) fatalf(format string, args ...interface{}) {
	e.t.Helper()
	tail := e.log
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	e.t.Fatalf("%s\nparams %+v\nlast operations:\n  %s", fmt.Sprintf(format, args...), e.p, strings.Join(tail, "\n  "))
}

func (e *env) do(cmd string, args ...interface{}) interface{} {
	e.t.Helper()
	v, err := e.c.Do(cmd, args...)
	if err != nil {
		e.fatalf("%s %v: %v", cmd, args, err)
	}
	return v
}

func (e *env) dumps() [2]string {
	var d [2]string
	for i, k := range []string{e.kb, e.km} {
		v := e.do("DUMP", k)
		if v != nil {
			d[i] = string(v.([]byte))
		}
	}
	return d
}

// newestLast is the newest bucket's last call in the twin, or -1.
func (e *env) newestLast() int64 {
	if e.st.Len() == 0 {
		return -1
	}
	return e.st.Bucket(e.st.Len() - 1).Last
}

// step runs one script and its twin operation. goOp runs on a copy of the
// twin's state and returns the expected reply or error code and whether
// the script writes; the copy is kept when it does.
func (e *env) step(name string, args []string, goOp func(st *sliding.State) (want []interface{}, code string, writes bool)) {
	e.t.Helper()
	e.ops++
	e.log = append(e.log, fmt.Sprintf("%s %s", name, strings.Join(args, " ")))
	sc := e.sc[name]
	before := e.dumps()
	gnow := e.now
	if l := e.newestLast(); l > gnow {
		gnow = l
	}
	ro := sc.readonly && e.rng.IntN(2) == 0
	cp := e.st
	want, code, writes := goOp(&cp)
	// A TTL of a few ms may run out on the real clock before a later
	// command reads it: read such TTLs inside the script's own run.
	atomic := false
	if writes && code == "" && cp.Len() > 0 {
		atomic = e.p.WindowMs-(gnow-cp.Bucket(cp.Len()-1).Last) < 500
	}
	got, ttls, err := e.runTx(sc, ro, atomic, args)
	switch {
	case code != "":
		if errCode(err) != code {
			e.fatalf("%s: got %v %v, want error %s", name, fmtReply(got), err, code)
		}
		writes = false
	case err != nil:
		e.fatalf("%s: %v, want %v", name, err, want)
	default:
		if d := diffReply(got, want); d != "" {
			e.fatalf("%s: %s", name, d)
		}
	}
	e.log[len(e.log)-1] += " -> " + fmtReply(got)
	if sc.readonly && writes {
		e.fatalf("%s: the twin says a read-only script writes", name)
	}
	if writes {
		e.st = cp
		e.checkTTL(gnow, ttls)
	} else {
		if after := e.dumps(); after != before {
			e.fatalf("%s wrote although it should not have", name)
		}
		for i, ttl := range ttls {
			if ttl != -1 && ttl != -2 {
				e.fatalf("%s set a TTL (%d) on key %d although it should not write", name, ttl, i+1)
			}
		}
	}
	// With hundreds of buckets, compare the whole state on every 16th step.
	if !e.clockExpired && (!e.many || e.ops%16 == 0) {
		e.checkState()
	}
}

// runTx runs the script and reads both keys' TTL in one transaction, then
// removes the TTLs, so that the real clock cannot expire keys of this
// simulated one (the keys cannot expire inside the transaction).
func (e *env) runTx(sc *script, ro, atomic bool, args []string) ([]interface{}, [2]int64, error) {
	e.t.Helper()
	keys := []interface{}{2, e.kb, e.km}
	for _, a := range args {
		keys = append(keys, a)
	}
	if atomic {
		vals, err := redis.Values(e.c.Do("EVAL", append([]interface{}{sc.ttlSrc}, keys...)...))
		if err != nil || len(vals) != 5 {
			e.fatalf("%s with TTLs: %v %v", sc.name, vals, err)
		}
		return e.scriptReply(sc, vals)
	}
	sends := [][]interface{}{{"MULTI"}}
	switch {
	case e.rng.IntN(4) == 0: // the Functions library's wrapping of the body
		cmd := "FCALL"
		if sc.readonly {
			cmd = "FCALL_RO"
		}
		sends = append(sends, append([]interface{}{cmd, "test_" + sc.name}, keys...))
	case ro:
		sends = append(sends, append([]interface{}{"EVAL_RO", sc.src}, keys...))
	default:
		sends = append(sends, append([]interface{}{"EVALSHA", sc.s.Hash()}, keys...))
	}
	sends = append(sends, []interface{}{"PTTL", e.kb}, []interface{}{"PTTL", e.km}, []interface{}{"PERSIST", e.kb}, []interface{}{"PERSIST", e.km})
	for _, s := range sends {
		if err := e.c.Send(s[0].(string), s[1:]...); err != nil {
			e.fatalf("send: %v", err)
		}
	}
	vals, err := redis.Values(e.c.Do("EXEC"))
	if err != nil || len(vals) != 5 {
		e.fatalf("EXEC: %v %v", vals, err)
	}
	return e.scriptReply(sc, vals)
}

// scriptReply splits [reply, PTTL buckets, PTTL meta, PERSIST, PERSIST].
func (e *env) scriptReply(sc *script, vals []interface{}) ([]interface{}, [2]int64, error) {
	e.t.Helper()
	ttls := [2]int64{vals[1].(int64), vals[2].(int64)}
	switch v := vals[0].(type) {
	case redis.Error:
		return nil, ttls, v
	case []interface{}:
		return v, ttls, nil
	default:
		e.fatalf("%s: reply %#v is not an array", sc.name, vals[0])
	}
	return nil, ttls, nil
}

// checkTTL checks both keys' TTL, read right after a write.
func (e *env) checkTTL(gnow int64, ttls [2]int64) {
	e.t.Helper()
	if e.st.Len() == 0 {
		if ttls != [2]int64{-2, -2} {
			e.fatalf("TTLs %v, want none (no keys)", ttls)
		}
		return
	}
	want := max(1, e.p.WindowMs-(gnow-e.newestLast()))
	if want == 1 && (ttls[0] == -2 || ttls[1] == -2) {
		// PEXPIRE 1 deletes the key at once when the server's millisecond
		// ticks between its reading of the time and its check that the
		// expiry lies ahead; the twin cannot follow, so the sequence ends.
		e.clockExpired = true
		return
	}
	for i, ttl := range ttls {
		if ttl < 0 || ttl > want || ttl < want-5000 {
			e.fatalf("PTTL of key %d = %d (both %v), want %d (at most the window %d)", i+1, ttl, ttls, want, e.p.WindowMs)
		}
	}
}

// checkState compares the stored buckets and totals with the twin: the
// list holds exactly the twin's buckets (expired ones included, since
// neither side drops them without a write).
func (e *env) checkState() {
	e.t.Helper()
	list, err := redis.Strings(e.c.Do("LRANGE", e.kb, 0, -1))
	if err != nil {
		e.fatalf("LRANGE: %v", err)
	}
	n := e.st.Len()
	want := make([]string, n)
	for i := range n {
		b := e.st.Bucket(i)
		want[i] = fmt.Sprintf("%d:%d:%d:%d", b.Start, b.Last, b.Count, b.Declined)
	}
	if strings.Join(list, " ") != strings.Join(want, " ") {
		e.fatalf("buckets %v, want %v", list, want)
	}
	meta, err := redis.Strings(e.c.Do("HMGET", e.km, "rate", "soft", "hard", "total", "declined"))
	if err != nil {
		e.fatalf("HMGET: %v", err)
	}
	if n == 0 {
		if ex := e.do("EXISTS", e.kb, e.km).(int64); ex != 0 {
			e.fatalf("the twin has no state but %d key(s) exist", ex)
		}
		return
	}
	r, _ := strconv.ParseFloat(meta[0], 64)
	wantMeta := []string{ff(float64(e.st.Rate)), fi(e.st.Soft), fi(e.st.Hard), fi(e.st.Total), fi(e.st.Declined)}
	if r != float64(e.st.Rate) || strings.Join(meta[1:], " ") != strings.Join(wantMeta[1:], " ") {
		e.fatalf("meta %v, want %v", meta, wantMeta)
	}
	// The meta's mirrors of the list's ends, when stored, are exact.
	mirrors, err := redis.Values(e.c.Do("HMGET", e.km, "newest", "oldest"))
	if err != nil {
		e.fatalf("HMGET: %v", err)
	}
	if (mirrors[0] == nil) != (mirrors[1] == nil) {
		e.fatalf("mirrors newest %q, oldest %q: only one is stored", mirrors[0], mirrors[1])
	}
	if mirrors[0] != nil {
		e.mirrored++
		if string(mirrors[0].([]byte)) != list[n-1] || string(mirrors[1].([]byte)) != list[0] {
			e.fatalf("mirrors newest %q, oldest %q; buckets %v", mirrors[0], mirrors[1], list)
		}
	}
}

// Random choices.

func (e *env) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := e.rng.IntN(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// randRate returns a rate for the window: mostly a small capacity,
// sometimes fractional, zero-capacity or saturating.
func (e *env) randRate() float64 {
	w := float64(e.p.WindowMs)
	switch e.pick(60, 12, 10, 8, 5, 5) {
	case 0:
		return float64(e.rng.IntN(30)+1) * 1000 / w * (0.95 + 0.1*e.rng.Float64())
	case 1:
		return e.rng.Float64() * 200
	case 2: // per-minute style values whose capacity needs the epsilon
		return float64(e.rng.IntN(500)+1) / 60
	case 3: // zero capacity
		return e.rng.Float64() * 999 / w
	case 4:
		return []float64{1e300, 1e15, math.MaxFloat64, 9007199254740991}[e.rng.IntN(4)]
	default:
		return float64(e.rng.IntN(5) + 1)
	}
}

// randN returns a count for inc: mostly small, sometimes about the caps,
// sometimes huge; it keeps the twin's total below 2^52 so that Lua's
// doubles stay exact.
func (e *env) randN() int64 {
	var n int64
	if e.many { // mostly 1, sometimes half the capacity or more: long retry walks
		n = 1
		if half := e.st.Soft / 2; half > 0 && e.rng.IntN(33) == 0 {
			n = half + e.rng.Int64N(half) + 1
		}
		return n
	}
	switch e.pick(70, 20, 5, 5) {
	case 0:
		n = int64(e.rng.IntN(3) + 1)
	case 1:
		limit := e.st.Hard
		if limit == 0 {
			limit = 20
		}
		n = e.rng.Int64N(min(limit, 1<<40)+3) + 1
	case 2:
		n = e.rng.Int64N(maxCount) + 1
	default:
		n = maxCount
	}
	if e.st.Total+n > 1<<52 {
		n = 1
	}
	return n
}

// advance moves the simulated clock: mostly forward, sometimes not at all,
// sometimes backwards (the monotonic guard).
func (e *env) advance() {
	w := e.p.WindowMs
	switch e.pick(20, 25, 25, 15, 8, 7) {
	case 0:
	case 1:
		e.now += e.rng.Int64N(e.p.BucketMs + 1)
	case 2:
		e.now += e.rng.Int64N(max(1, w/4)) + 1
	case 3:
		e.now += e.rng.Int64N(min(w, 3000)) + 1
	case 4:
		e.now += e.rng.Int64N(2*w) + 1
	default:
		e.now -= e.rng.Int64N(min(w, 2000) + 1)
	}
}

func newEnv(t *testing.T, c redis.Conn, sc map[string]*script, rng *rand.Rand, suppressed bool, name string) *env {
	windows := []int64{1, 2, 5, 50, 100, 999, 1000, 1001, 1500, 2500, 10000, 60000}
	w := windows[rng.IntN(len(windows))]
	if rng.IntN(3) == 0 {
		w = rng.Int64N(20000) + 1
	}
	var b int64
	switch rng.IntN(4) {
	case 0:
		b = 1
	case 1:
		b = w
	default:
		b = rng.Int64N(min(w, 500)) + 1
	}
	hfs := []float64{1, 1.5, 2, 1.0000001, 1 + 3*rng.Float64()}
	caches := []int64{1, 10, 100, rng.Int64N(3000) + 1}
	p := sliding.Params{WindowMs: w, BucketMs: b, HardLimitFactor: hfs[rng.IntN(len(hfs))], FactorCacheMs: caches[rng.IntN(len(caches))], Suppressed: suppressed}
	strat := "abs"
	if suppressed {
		strat = "sup"
	}
	e := &env{t: t, c: c, sc: sc, rng: rng, p: p,
		kb: "trypema:v1:" + strat + ":{" + name + "}:buckets", km: "trypema:v1:" + strat + ":{" + name + "}:meta",
		now: 1_700_000_000_000 + rng.Int64N(1_000_000)}
	if rng.IntN(20) == 0 {
		e.now = rng.Int64N(3)
	}
	e.rate = e.randRate()
	return e
}

// Operations of both strategies.

func (e *env) hf() float64 {
	if e.p.Suppressed {
		return e.p.HardLimitFactor
	}
	return 1
}

func (e *env) opRate() float64 {
	if !e.many && e.rng.IntN(5) == 0 {
		return e.randRate()
	}
	return e.rate
}

func (e *env) setRateLimit() {
	r := e.opRate()
	if e.rng.IntN(3) == 0 {
		r = float64(e.st.Rate) // equal rate: writes nothing
	}
	if r == 0 {
		r = e.rate
	}
	e.step("set_rate_limit", []string{fi(e.p.WindowMs), ff(e.hf()), ff(r), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		prev, existed, err := st.SetRateLimit(&e.p, e.now, trypema.Rate(r))
		if err != nil {
			return nil, codeOf(err), false
		}
		return []interface{}{b2i(existed), fl(prev)}, "", existed && float64(prev) != r
	})
}

func (e *env) setIf() {
	r := e.opRate()
	cmp := comparators[e.rng.IntN(len(comparators))]
	mode := modes[e.rng.IntN(len(modes))]
	cur := e.st.Total
	if e.many {
		mode = modes[1+e.rng.IntN(2)]
		cmp = trypema.Always
		r = e.rate
	}
	var n int64
	switch e.pick(5, 15, 30, 30, 15, 5) {
	case 0:
		n = 0
	case 1:
		n = cur
	case 2:
		n = max(0, cur-e.rng.Int64N(cur+2))
	case 3:
		n = cur + e.rng.Int64N(10) + 1
	case 4:
		n = e.rng.Int64N(max(e.st.Hard, 10)*2 + 1)
	default:
		n = e.rng.Int64N(1<<40) + 1
	}
	if n == 0 && (e.many || e.rng.IntN(2) == 0) {
		n = 1
	}
	if e.many { // lower by up to 300 units (buckets), or raise a little
		n = max(1, cur-e.rng.Int64N(300))
		if e.rng.IntN(2) == 0 {
			n = cur + e.rng.Int64N(5)
		}
	}
	// Suppressed totals grow with every declined call: keep them well
	// inside Lua's exact integers.
	if limit := int64(maxCount); n > limit || (e.p.Suppressed && n > 1<<52) {
		n = e.rng.Int64N(1<<40) + 1
	}
	e.step("set_if", []string{fi(e.p.WindowMs), ff(e.hf()), ff(r), cmp.String(), fi(n), mode.String(), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		res, err := st.SetIf(&e.p, e.now, trypema.Rate(r), cmp, n, mode)
		if err != nil {
			return nil, codeOf(err), false
		}
		return []interface{}{b2i(res.Matched), res.Previous, res.Current}, "", res.Matched
	})
}

func (e *env) del() {
	usage := "total"
	if e.p.Suppressed {
		usage = "accepted"
	}
	e.step("delete", []string{fi(e.p.WindowMs), usage, fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		u, existed := st.Delete(&e.p, e.now)
		return []interface{}{b2i(existed), u}, "", true
	})
}

func snapshotReply(s trypema.Snapshot) []interface{} {
	if !s.Exists {
		return []interface{}{int64(0), int64(0), int64(0), int64(0), int64(0), "0", "0"}
	}
	return []interface{}{int64(1), s.Total, s.Declined, s.Limit, s.HardLimit, fl(s.Rate), fl(s.SuppressionFactor)}
}

// Absolute.

func (e *env) absInc() {
	r, n := e.opRate(), e.randN()
	e.step("absolute_inc", []string{fi(e.p.WindowMs), fi(e.p.BucketMs), ff(r), fi(n), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		d, err := st.IncAbsolute(&e.p, e.now, trypema.Rate(r), n)
		if err != nil {
			return nil, codeOf(err), false
		}
		return decisionReply(d), "", d.Outcome == trypema.Allowed
	})
}

func decisionReply(d trypema.Decision) []interface{} {
	return []interface{}{d.Outcome.String(), d.Limit, d.Remaining, d.RetryAfter.Milliseconds(), d.RemainingAfterWaiting}
}

func (e *env) absIsAllowed() {
	e.step("absolute_is_allowed", []string{fi(e.p.WindowMs), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		return decisionReply(st.IsAllowed(&e.p, e.now)), "", false
	})
}

func (e *env) absGet() {
	e.step("absolute_get", []string{fi(e.p.WindowMs), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		return snapshotReply(st.Snapshot(&e.p, e.now)), "", false
	})
}

// Suppressed.

func (e *env) supInc() {
	r, n := e.opRate(), e.randN()
	u := e.rng.Float64()
	// Sometimes u at the edge of admission: 1 − f (denied) or just below.
	probe := e.st
	f := probe.Factor(&e.p, e.now)
	if f > 0 && f < 1 && e.rng.IntN(8) == 0 {
		u = 1 - f
		if e.rng.IntN(2) == 0 {
			u = math.Nextafter(u, 0)
		}
	}
	uArg := ff(u)
	// Without u the script draws its own: only when u cannot matter (the
	// probe runs on a copy, and Snapshot does not touch the shared ring).
	probe = e.st
	snap := probe.Snapshot(&e.p, e.now)
	if e.rng.IntN(4) == 0 && (snap.SuppressionFactor == 0 || snap.SuppressionFactor == 1 ||
		snap.Total-snap.Declined+n > snap.HardLimit) {
		uArg = ""
	}
	args := []string{fi(e.p.WindowMs), fi(e.p.BucketMs), ff(e.p.HardLimitFactor), fi(e.p.FactorCacheMs), ff(r), fi(n), uArg, fi(e.now)}
	e.step("suppressed_inc", args, func(st *sliding.State) ([]interface{}, string, bool) {
		d, err := st.IncSuppressed(&e.p, e.now, trypema.Rate(r), n, func() float64 { return u })
		if err != nil {
			return nil, codeOf(err), false
		}
		outcome := "suppressed"
		if d.Outcome == trypema.Allowed {
			outcome = "allowed"
		}
		return []interface{}{outcome, b2i(d.Admitted), d.Limit, d.Remaining, fl(d.SuppressionFactor)}, "", true
	})
}

func (e *env) supFactor() {
	e.step("suppressed_factor", []string{fi(e.p.WindowMs), fi(e.p.FactorCacheMs), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		return []interface{}{fl(st.Factor(&e.p, e.now))}, "", false
	})
}

func (e *env) supGet() {
	e.step("suppressed_get", []string{fi(e.p.WindowMs), fi(e.p.FactorCacheMs), fi(e.now)}, func(st *sliding.State) ([]interface{}, string, bool) {
		return snapshotReply(st.Snapshot(&e.p, e.now)), "", false
	})
}

func (e *env) randomOp() {
	if e.p.Suppressed {
		switch e.pick(50, 12, 10, 10, 14, 4) {
		case 0:
			e.supInc()
		case 1:
			e.supFactor()
		case 2:
			e.supGet()
		case 3:
			e.setRateLimit()
		case 4:
			e.setIf()
		default:
			e.del()
		}
		return
	}
	switch e.pick(45, 15, 10, 10, 15, 5) {
	case 0:
		e.absInc()
	case 1:
		e.absIsAllowed()
	case 2:
		e.absGet()
	case 3:
		e.setRateLimit()
	case 4:
		e.setIf()
	default:
		e.del()
	}
}

// TestScriptsMatchSliding runs random operation sequences on both
// strategies and compares every reply and the stored state with the twin.
func TestScriptsMatchSliding(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	const shards = 4
	for _, suppressed := range []bool{false, true} {
		name := "absolute"
		if suppressed {
			name = "suppressed"
		}
		for shard := range shards {
			t.Run(fmt.Sprintf("%s/%d", name, shard), func(t *testing.T) {
				t.Parallel()
				c := srv.Dial(t)
				loadInto(t, c, sc)
				ops, cut, seqs, mirrored := 0, 0, 0, 0
				for seq := shard; seq < *flagSeqs; seq += shards {
					rng := rand.New(rand.NewPCG(*flagSeed, uint64(seq)<<1|b2u(suppressed)))
					e := newEnv(t, c, sc, rng, suppressed, fmt.Sprintf("%s_%d", name, seq))
					steps := 20 + rng.IntN(80)
					for range steps {
						e.advance()
						if e.now < 0 {
							e.now = 0
						}
						e.randomOp()
						if e.clockExpired {
							cut++
							break
						}
					}
					ops += e.ops
					mirrored += e.mirrored
					seqs++
				}
				t.Logf("%d sequences, %d operations (%d sequences cut short by a 1 ms TTL), %d states checked with mirrors", seqs, ops, cut, mirrored)
				if mirrored == 0 {
					t.Error("no state had the mirrors of the list's ends: the scripts' usual path went unchecked")
				}
			})
		}
	}
}

// loadInto loads every script into the server, for EVALSHA in MULTI, and
// a Functions library wrapping each body as the generator does (function
// test_<name>).
func loadInto(t *testing.T, c redis.Conn, sc map[string]*script) {
	t.Helper()
	for _, s := range sc {
		if err := s.s.Load(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Do("FUNCTION", "LOAD", "REPLACE", testLibrary(t)); err != nil {
		t.Fatalf("FUNCTION LOAD: %v", err)
	}
}

// testLibrary is lib.lua followed by every body wrapped in a function with
// local KEYS, ARGV = keys, args.
func testLibrary(t *testing.T) string {
	t.Helper()
	lib, err := os.ReadFile("v1/lib.lua")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("#!lua name=trypema_scripts_test\n")
	b.Write(lib)
	for _, name := range scriptNames {
		body, err := os.ReadFile("v1/" + name + ".lua")
		if err != nil {
			t.Fatal(err)
		}
		flags := ""
		if loadScripts(t)[name].readonly {
			flags = "'no-writes'"
		}
		fmt.Fprintf(&b, "\nredis.register_function{function_name = 'test_%s', flags = {%s}, callback = function(keys, args)\n"+
			"local KEYS, ARGV = keys, args\n%s\nend}\n", name, flags, body)
	}
	return b.String()
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// TestScriptsManyBuckets drives keys with hundreds of live buckets, so that
// every bucket walk (expiry, retry, recent units, set_if lowering) crosses
// several LRANGE chunks.
func TestScriptsManyBuckets(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	var mu sync.Mutex
	most := 0
	t.Run("seq", func(t *testing.T) {
		for seq := range 8 {
			t.Run(fmt.Sprint(seq), func(t *testing.T) {
				t.Parallel()
				c := srv.Dial(t)
				loadInto(t, c, sc)
				maxLen := manyBuckets(t, c, sc, seq)
				mu.Lock()
				most = max(most, maxLen)
				mu.Unlock()
			})
		}
	})
	if most < 3*128 {
		t.Errorf("at most %d buckets at once; the walks did not cross chunks", most)
	}
}

// manyBuckets runs sequence seq of TestScriptsManyBuckets and returns the
// most buckets the key had at once.
func manyBuckets(t *testing.T, c redis.Conn, sc map[string]*script, seq int) int {
	suppressed := seq%2 == 1
	rng := rand.New(rand.NewPCG(*flagSeed+7, uint64(seq)))
	e := newEnv(t, c, sc, rng, suppressed, fmt.Sprintf("many_%d", seq))
	e.many = true
	e.p.WindowMs = []int64{3000, 60000, 900, 20000}[seq/2]
	e.p.BucketMs = int64(1 + seq%3)
	e.p.FactorCacheMs = []int64{1, 50}[seq%2]
	e.p.HardLimitFactor = 1.5
	e.rate = 1000 * 1000 / float64(e.p.WindowMs) // 1000 units in the window
	maxLen := 0
	for range 2000 {
		switch e.pick(967, 3, 30) {
		case 0:
			e.now += e.rng.Int64N(4)
		case 1: // expire many buckets at once
			e.now += e.rng.Int64N(e.p.WindowMs / 3)
		default:
			e.now = max(0, e.now-e.rng.Int64N(50))
		}
		switch e.pick(89, 4, 4, 2, 1) {
		case 0:
			if suppressed {
				e.supInc()
			} else {
				e.absInc()
			}
		case 1:
			if suppressed {
				e.supFactor()
			} else {
				e.absIsAllowed()
			}
		case 2:
			if suppressed {
				e.supGet()
			} else {
				e.absGet()
			}
		case 3:
			e.setRateLimit()
		default:
			e.setIf()
		}
		maxLen = max(maxLen, e.st.Len())
		if e.clockExpired {
			break
		}
	}
	t.Logf("%d operations, up to %d buckets at once", e.ops, maxLen)
	return maxLen
}

// A key with some state, for the error and read-only tests.
func seed(t *testing.T, c redis.Conn, sc map[string]*script, strat string) (kb, km string) {
	t.Helper()
	kb, km = "trypema:v1:"+strat+":{seeded}:buckets", "trypema:v1:"+strat+":{seeded}:meta"
	if _, err := c.Do("DEL", kb, km); err != nil {
		t.Fatal(err)
	}
	for i := range int64(30) {
		var err error
		if strat == "abs" {
			_, err = run(c, sc["absolute_inc"], false, []string{kb, km}, "10000", "100", "2", "1", fi(1_000_000+i*150))
		} else {
			_, err = run(c, sc["suppressed_inc"], false, []string{kb, km}, "10000", "100", "1.5", "100", "2", "1", "0.5", fi(1_000_000+i*150))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return kb, km
}

type errCase struct {
	script string
	args   []string
	code   string
}

// TestScriptErrors checks every error code of every script with a bad
// argument or bad state, and that nothing was written.
func TestScriptErrors(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	const now = "1004400"
	huge := "9007199254740992"
	cases := []errCase{
		// absolute_inc: window_ms bucket_ms rate n now_ms?
		{"absolute_inc", []string{"10000", "100", "2", "1", now, "x"}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"10000", "100", "2"}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"10000", "100", "", "1"}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"10000", "100", "2", "1", "-1"}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"10000", "100", "2", "1", "1.5"}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"10000", "100", "2", "1", huge}, "TRYPEMA_ARG"},
		{"absolute_inc", []string{"0", "100", "2", "1", now}, "TRYPEMA_WINDOW"},
		{"absolute_inc", []string{"34560000001", "100", "2", "1", now}, "TRYPEMA_WINDOW"},
		{"absolute_inc", []string{"1e4", "100", "2", "1", now}, "TRYPEMA_WINDOW"},
		{"absolute_inc", []string{"10000", "0", "2", "1", now}, "TRYPEMA_BUCKET"},
		{"absolute_inc", []string{"10000", "10001", "2", "1", now}, "TRYPEMA_BUCKET"},
		{"absolute_inc", []string{"10000", "100", "0", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "-2", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "nan", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "inf", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "0x10", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "1e999", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "1e-310", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", " 2", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "1.2.3", "1", now}, "TRYPEMA_RATE"},
		{"absolute_inc", []string{"10000", "100", "2", "0", now}, "TRYPEMA_COUNT"},
		{"absolute_inc", []string{"10000", "100", "2", "-1", now}, "TRYPEMA_COUNT"},
		{"absolute_inc", []string{"10000", "100", "2", huge, now}, "TRYPEMA_COUNT"},
		{"absolute_inc", []string{"10000", "100", "2", "21", now}, "TRYPEMA_COUNT_EXCEEDS_CAPACITY"},
		// absolute_is_allowed / absolute_get: window_ms now_ms?
		{"absolute_is_allowed", []string{}, "TRYPEMA_ARG"},
		{"absolute_is_allowed", []string{"10000", now, ""}, "TRYPEMA_ARG"},
		{"absolute_is_allowed", []string{"10000", "x"}, "TRYPEMA_ARG"},
		{"absolute_is_allowed", []string{"-5", now}, "TRYPEMA_WINDOW"},
		{"absolute_get", []string{"10000", "1", "2"}, "TRYPEMA_ARG"},
		{"absolute_get", []string{"abc", now}, "TRYPEMA_WINDOW"},
		// suppressed_inc: window_ms bucket_ms hard_limit_factor factor_cache_ms rate n u? now_ms?
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "1", "0.5", now, "1"}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "0", "2", "1", "0.5", now}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "1", "1", now}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "1", "-0.1", now}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "1", "nan", now}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "1", "0.5", "now"}, "TRYPEMA_ARG"},
		{"suppressed_inc", []string{"x", "100", "1.5", "100", "2", "1", "0.5", now}, "TRYPEMA_WINDOW"},
		{"suppressed_inc", []string{"10000", "20000", "1.5", "100", "2", "1", "0.5", now}, "TRYPEMA_BUCKET"},
		{"suppressed_inc", []string{"10000", "100", "0.99", "100", "2", "1", "0.5", now}, "TRYPEMA_FACTOR"},
		{"suppressed_inc", []string{"10000", "100", "inf", "100", "2", "1", "0.5", now}, "TRYPEMA_FACTOR"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "0", "1", "0.5", now}, "TRYPEMA_RATE"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "0", "0.5", now}, "TRYPEMA_COUNT"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "2", "31", "0.5", now}, "TRYPEMA_COUNT_EXCEEDS_CAPACITY"},
		// suppressed_factor / suppressed_get: window_ms factor_cache_ms now_ms?
		{"suppressed_factor", []string{"10000"}, "TRYPEMA_ARG"},
		{"suppressed_factor", []string{"10000", "-1", now}, "TRYPEMA_ARG"},
		{"suppressed_factor", []string{"0", "100", now}, "TRYPEMA_WINDOW"},
		{"suppressed_get", []string{"10000", "100", now, "x"}, "TRYPEMA_ARG"},
		{"suppressed_get", []string{"1.5", "100", now}, "TRYPEMA_WINDOW"},
		// set_rate_limit: window_ms hard_limit_factor rate now_ms?
		{"set_rate_limit", []string{"10000", "1"}, "TRYPEMA_ARG"},
		{"set_rate_limit", []string{"10000", "1", "3", "x"}, "TRYPEMA_ARG"},
		{"set_rate_limit", []string{"0", "1", "3", now}, "TRYPEMA_WINDOW"},
		{"set_rate_limit", []string{"10000", "0", "3", now}, "TRYPEMA_FACTOR"},
		{"set_rate_limit", []string{"10000", "1", "-3", now}, "TRYPEMA_RATE"},
		{"set_rate_limit", []string{"10000", "1", "0.01", now}, "TRYPEMA_ZERO_CAPACITY"},
		// set_if: window_ms hard_limit_factor rate comparator n mode now_ms?
		{"set_if", []string{"10000", "1", "3", "lt", "5"}, "TRYPEMA_ARG"},
		{"set_if", []string{"10000", "1", "3", "less", "5", "replace", now}, "TRYPEMA_ARG"},
		{"set_if", []string{"10000", "1", "3", "lt", "5", "merge", now}, "TRYPEMA_ARG"},
		{"set_if", []string{"10000", "1", "3", "LT", "5", "replace", now}, "TRYPEMA_ARG"},
		{"set_if", []string{"10000", "1", "3", "lt", "5", "replace", "-1"}, "TRYPEMA_ARG"},
		{"set_if", []string{"99999999999", "1", "3", "lt", "5", "replace", now}, "TRYPEMA_WINDOW"},
		{"set_if", []string{"10000", "nan", "3", "lt", "5", "replace", now}, "TRYPEMA_FACTOR"},
		{"set_if", []string{"10000", "1", "1e400", "lt", "5", "replace", now}, "TRYPEMA_RATE"},
		{"set_if", []string{"10000", "1", "3", "always", "-1", "replace", now}, "TRYPEMA_COUNT"},
		{"set_if", []string{"10000", "1", "3", "always", huge, "replace", now}, "TRYPEMA_COUNT"},
		{"set_if", []string{"10000", "1", "0.05", "always", "5", "replace", now}, "TRYPEMA_ZERO_CAPACITY"},
		// delete: window_ms usage now_ms?
		{"delete", []string{"10000"}, "TRYPEMA_ARG"},
		{"delete", []string{"10000", "all", now}, "TRYPEMA_ARG"},
		{"delete", []string{"10000", "total", now, now}, "TRYPEMA_ARG"},
		{"delete", []string{"0", "total", now}, "TRYPEMA_WINDOW"},
	}
	for _, strat := range []string{"abs", "sup"} {
		kb, km := seed(t, c, sc, strat)
		if _, err := c.Do("PERSIST", kb); err != nil {
			t.Fatal(err)
		}
		before := dumpKeys(t, c, kb, km)
		check := func(name string, keys []string, args []string, code string) {
			t.Helper()
			got, err := run(c, sc[name], false, keys, args...)
			if errCode(err) != code {
				t.Errorf("%s %v: got %v %v, want %s", name, args, fmtReply(got), err, code)
			} else if !regexp.MustCompile(`^TRYPEMA_[A-Z_]+ \S.{20,}$`).MatchString(err.Error()) {
				t.Errorf("%s %v: message %q is not descriptive", name, args, err)
			}
			if after := dumpKeys(t, c, kb, km); after != before {
				t.Fatalf("%s %v (%s) changed the keys", name, args, code)
			}
			if ttl, _ := redis.Int64(c.Do("PTTL", kb)); ttl != -1 {
				t.Fatalf("%s %v (%s) set a TTL", name, args, code)
			}
		}
		for _, tc := range cases {
			if (strat == "abs" && strings.HasPrefix(tc.script, "suppressed")) || (strat == "sup" && strings.HasPrefix(tc.script, "absolute")) {
				continue
			}
			check(tc.script, []string{kb, km}, tc.args, tc.code)
		}
		// Wrong number of keys, for every script.
		for _, name := range scriptNames {
			check(name, []string{kb}, []string{"10000"}, "TRYPEMA_KEYS")
			check(name, []string{kb, km, "x"}, []string{"10000"}, "TRYPEMA_KEYS")
		}
		t.Logf("%s: %d error cases", strat, len(cases))
	}
	// Zero capacity for a new key; no key is created.
	for _, tc := range []errCase{
		{"absolute_inc", []string{"10000", "100", "0.05", "1", "5"}, "TRYPEMA_ZERO_CAPACITY"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "0.05", "1", "", "5"}, "TRYPEMA_ZERO_CAPACITY"},
		{"suppressed_inc", []string{"10000", "100", "1.5", "100", "1", "16", "", "5"}, "TRYPEMA_COUNT_EXCEEDS_CAPACITY"},
	} {
		_, err := run(c, sc[tc.script], false, []string{"nk:{a}:b", "nk:{a}:m"}, tc.args...)
		if errCode(err) != tc.code {
			t.Errorf("%s %v: got %v, want %s", tc.script, tc.args, err, tc.code)
		}
		if n, _ := redis.Int(c.Do("EXISTS", "nk:{a}:b", "nk:{a}:m")); n != 0 {
			t.Errorf("%s %v created keys", tc.script, tc.args)
		}
	}

	// Wrong types and corrupt state, for every script.
	allArgs := map[string][]string{
		"absolute_inc":        {"10000", "100", "2", "1", now},
		"absolute_is_allowed": {"10000", now},
		"absolute_get":        {"10000", now},
		"suppressed_inc":      {"10000", "100", "1.5", "100", "2", "1", "0.5", now},
		"suppressed_factor":   {"10000", "100", now},
		"suppressed_get":      {"10000", "100", now},
		"set_rate_limit":      {"10000", "1", "3", now},
		"set_if":              {"10000", "1", "3", "always", "5", "replace", now},
		"delete":              {"10000", "total", now},
	}
	type badState struct {
		what  string
		setup func(kb, km string)
		code  string
	}
	do := func(cmd string, args ...interface{}) {
		t.Helper()
		if _, err := c.Do(cmd, args...); err != nil {
			t.Fatal(err)
		}
	}
	states := []badState{
		{"buckets is a string", func(kb, km string) { do("SET", kb, "x") }, "TRYPEMA_WRONGTYPE"},
		{"meta is a list", func(kb, km string) { do("RPUSH", km, "x") }, "TRYPEMA_WRONGTYPE"},
		{"meta is a string, buckets empty", func(kb, km string) { do("SET", km, "x") }, "TRYPEMA_WRONGTYPE"},
		{"bad bucket", func(kb, km string) {
			do("RPUSH", kb, "1004000:1004000:x:0")
			do("HSET", km, "rate", "2", "soft", "20", "hard", "20", "total", "1", "declined", "0")
		}, "TRYPEMA_CORRUPT"},
		{"bad newest bucket", func(kb, km string) {
			do("RPUSH", kb, "1004000:1004000:1:0", "1004100:1004100:1")
			do("HSET", km, "rate", "2", "soft", "20", "hard", "20", "total", "2", "declined", "0")
		}, "TRYPEMA_CORRUPT"},
		{"missing meta", func(kb, km string) { do("RPUSH", kb, "1004000:1004000:1:0") }, "TRYPEMA_CORRUPT"},
		{"bad rate", func(kb, km string) {
			do("RPUSH", kb, "1004000:1004000:1:0")
			do("HSET", km, "rate", "fast", "soft", "20", "hard", "20", "total", "1", "declined", "0")
		}, "TRYPEMA_CORRUPT"},
		{"bad total", func(kb, km string) {
			do("RPUSH", kb, "1004000:1004000:1:0")
			do("HSET", km, "rate", "2", "soft", "20", "hard", "20", "total", "1.5", "declined", "0")
		}, "TRYPEMA_CORRUPT"},
		{"bad factor cache", func(kb, km string) {
			do("RPUSH", kb, "1004000:1004000:1:0")
			do("HSET", km, "rate", "2", "soft", "20", "hard", "20", "total", "1", "declined", "0", "f", "2", "f_at", "1", "f_head", "1")
		}, "TRYPEMA_CORRUPT"},
	}
	for name, args := range allArgs {
		for _, bs := range states {
			kb, km := "bad:{k}:buckets", "bad:{k}:meta"
			do("DEL", kb, km)
			bs.setup(kb, km)
			before := dumpKeys(t, c, kb, km)
			_, err := run(c, sc[name], false, []string{kb, km}, args...)
			if errCode(err) != bs.code {
				t.Errorf("%s on %s: got %v, want %s", name, bs.what, err, bs.code)
			}
			if after := dumpKeys(t, c, kb, km); after != before {
				t.Errorf("%s on %s changed the keys", name, bs.what)
			}
		}
	}
}

func dumpKeys(t *testing.T, c redis.Conn, keys ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, k := range keys {
		v, err := c.Do("DUMP", k)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			sb.Write(v.([]byte))
		}
		sb.WriteString("|")
	}
	return sb.String()
}

// TestReadOnlyScripts checks that the read-only scripts run with EVAL_RO
// (and so write nothing) and leave the keys, TTLs included, untouched, even
// when buckets have expired.
func TestReadOnlyScripts(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	for _, strat := range []string{"abs", "sup"} {
		kb, km := seed(t, c, sc, strat)
		before := dumpKeys(t, c, kb, km)
		ttlBefore, _ := redis.Int64(c.Do("PTTL", kb))
		for _, name := range scriptNames {
			if !sc[name].readonly {
				continue
			}
			if strings.HasPrefix(name, "absolute") != (strat == "abs") {
				continue
			}
			args := []string{"10000"}
			if strings.HasPrefix(name, "suppressed") {
				args = append(args, "100")
			}
			// at the end of the seeding, after some expiries, after all, and on the server clock
			for _, now := range []string{"1004400", "1011000", "1014449", "1100000", ""} {
				for _, ro := range []bool{true, false} {
					if _, err := run(c, sc[name], ro, []string{kb, km}, append(args, now)...); err != nil {
						t.Fatalf("%s (EVAL_RO %v) at %q: %v", name, ro, now, err)
					}
				}
			}
			if _, err := run(c, sc[name], true, []string{"ro:{none}:b", "ro:{none}:m"}, args...); err != nil {
				t.Fatalf("%s on a missing key: %v", name, err)
			}
			if after := dumpKeys(t, c, kb, km); after != before {
				t.Fatalf("%s changed the keys", name)
			}
			if ttl, _ := redis.Int64(c.Do("PTTL", kb)); ttl > ttlBefore {
				t.Fatalf("%s refreshed the TTL", name)
			}
		}
		// EVAL_RO refuses a write script that writes.
		if _, err := run(c, sc[map[string]string{"abs": "absolute_inc", "sup": "suppressed_inc"}[strat]], true, []string{kb, km}, allIncArgs(strat)...); err == nil {
			t.Fatalf("EVAL_RO accepted a write")
		}
	}
	for _, name := range scriptNames {
		want := strings.Contains(name, "get") || strings.Contains(name, "is_allowed") || strings.Contains(name, "factor")
		if sc[name].readonly != want {
			t.Errorf("%s: readonly %v, want %v", name, sc[name].readonly, want)
		}
	}
}

func allIncArgs(strat string) []string {
	if strat == "abs" {
		return []string{"10000", "100", "2", "1", "1100000"}
	}
	return []string{"10000", "100", "1.5", "100", "2", "1", "0.5", "1100000"}
}

// TestServerClockAndDraw checks the paths without now_ms (the server's
// TIME) and without u (the script's own draw).
func TestServerClockAndDraw(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	kb, km := "clk:{a}:buckets", "clk:{a}:meta"
	tm, err := redis.Int64s(c.Do("TIME"))
	if err != nil {
		t.Fatal(err)
	}
	server := tm[0]*1000 + tm[1]/1000
	got, err := run(c, sc["absolute_inc"], false, []string{kb, km}, "60000", "100", "1", "1")
	if err != nil || diffReply(got, []interface{}{"allowed", int64(60), int64(59), int64(0), int64(0)}) != "" {
		t.Fatalf("absolute_inc on the server clock: %v %v", fmtReply(got), err)
	}
	b, _ := redis.String(c.Do("LINDEX", kb, 0))
	var start, last, count, declined int64
	if _, err := fmt.Sscanf(b, "%d:%d:%d:%d", &start, &last, &count, &declined); err != nil || start < server || start > server+5000 {
		t.Fatalf("bucket %q, server time %d", b, server)
	}
	if ttl, _ := redis.Int64(c.Do("PTTL", km)); ttl <= 55000 || ttl > 60000 {
		t.Fatalf("PTTL %d", ttl)
	}
	// Explicit empty optional arguments are absent ones.
	if got, err = run(c, sc["absolute_is_allowed"], true, []string{kb, km}, "60000", ""); err != nil || diffReply(got, []interface{}{"allowed", int64(60), int64(59), int64(0), int64(0)}) != "" {
		t.Fatalf("absolute_is_allowed: %v %v", fmtReply(got), err)
	}

	// The script's own draw: a key held at a factor strictly between 0
	// and 1 admits about 1 − f of the calls, and not always the same way.
	skb, skm := "draw:{a}:buckets", "draw:{a}:meta"
	const now = 5_000_000
	// 10/s over 10 s: S = 100, H = 1000. 100 units observed in the last
	// second: f = 1 − 10/100 = 0.9 (cached for 10 minutes).
	if _, err := c.Do("RPUSH", skb, fmt.Sprintf("%d:%d:100:0", now-500, now-500)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("HSET", skm, "rate", "10", "soft", "100", "hard", "1000", "total", "100", "declined", "0"); err != nil {
		t.Fatal(err)
	}
	f, err := run(c, sc["suppressed_factor"], true, []string{skb, skm}, "10000", "600000", fi(now))
	if err != nil || string(f[0].([]byte)) != "0.90000000000000002" {
		t.Fatalf("factor %v %v", fmtReply(f), err)
	}
	dump := dumpKeys(t, c, skb, skm)
	admitted := 0
	const calls = 400
	for range calls {
		if _, err := c.Do("RESTORE", skb, 0, []byte(strings.Split(dump, "|")[0]), "REPLACE"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do("RESTORE", skm, 0, []byte(strings.Split(dump, "|")[1]), "REPLACE"); err != nil {
			t.Fatal(err)
		}
		got, err := run(c, sc["suppressed_inc"], false, []string{skb, skm}, "10000", "100", "10", "600000", "10", "1", "", fi(now))
		if err != nil {
			t.Fatal(err)
		}
		if string(got[0].([]byte)) != "suppressed" || string(got[4].([]byte)) != "0.90000000000000002" {
			t.Fatalf("reply %v", fmtReply(got))
		}
		admitted += int(got[1].(int64))
	}
	// 1 − f = 0.1: expect 40 of 400; the bounds are far out (p < 1e-6).
	if admitted < 12 || admitted > 80 {
		t.Fatalf("admitted %d of %d calls at factor 0.9, want about %d", admitted, calls, calls/10)
	}
	t.Logf("admitted %d of %d at factor 0.9", admitted, calls)
}

// TestHeaders checks the --! header of every script: the tags, one arg
// line per argument the script accepts, the example's key count, and an
// error line for each code the tests above provoke.
func TestHeaders(t *testing.T) {
	sc := loadScripts(t)
	srv := redistest.Start(t)
	c := srv.Dial(t)
	for _, name := range scriptNames {
		s := sc[name]
		tags := map[string]int{}
		var args, errs []string
		for _, line := range s.header {
			f := strings.Fields(line)
			if len(f) < 3 {
				t.Errorf("%s: short header line %q", name, line)
				continue
			}
			tags[f[1]]++
			switch f[1] {
			case "script":
				if f[2] != name {
					t.Errorf("%s: header names script %s", name, f[2])
				}
			case "arg":
				if len(f) < 7 || !map[string]bool{"int": true, "float": true, "string": true}[f[3]] ||
					!map[string]bool{"ms": true, "units": true, "units/s": true, "ratio": true, "-": true}[f[4]] ||
					(f[5] != "required" && f[5] != "optional") {
					t.Errorf("%s: bad arg line %q", name, line)
				}
				args = append(args, f[2])
			case "reply":
				if len(f) < 5 || !map[string]bool{"int": true, "float": true, "string": true}[f[3]] {
					t.Errorf("%s: bad reply line %q", name, line)
				}
			case "error":
				errs = append(errs, f[2])
			case "example":
				if f[2] != "2" || !strings.HasPrefix(f[3], "trypema:v1:") || !strings.HasSuffix(f[3], ":buckets") || !strings.HasSuffix(f[4], ":meta") {
					t.Errorf("%s: bad example %q", name, line)
				}
				// The example runs.
				ka := []interface{}{2}
				for _, a := range f[3:] {
					ka = append(ka, a)
				}
				if _, err := s.s.Do(c, ka...); err != nil {
					t.Errorf("%s: example %q: %v", name, line, err)
				}
			}
		}
		for _, tag := range []string{"script", "summary", "readonly", "example"} {
			if tags[tag] != 1 {
				t.Errorf("%s: %d %s lines", name, tags[tag], tag)
			}
		}
		if tags["key"] != 2 {
			t.Errorf("%s: %d key lines", name, tags["key"])
		}
		// One arg line per accepted argument: one more is refused.
		extra := make([]string, len(args)+1)
		for i := range extra {
			extra[i] = "1"
		}
		_, err := run(c, s, false, []string{"h:{x}:b", "h:{x}:m"}, extra...)
		if errCode(err) != "TRYPEMA_ARG" || !strings.Contains(err.Error(), fmt.Sprintf("at most %d expected", len(args))) {
			t.Errorf("%s: %d arg lines, but %d arguments give %v", name, len(args), len(extra), err)
		}
		for _, code := range []string{"TRYPEMA_KEYS", "TRYPEMA_ARG", "TRYPEMA_WINDOW", "TRYPEMA_WRONGTYPE", "TRYPEMA_CORRUPT"} {
			if !contains(errs, code) {
				t.Errorf("%s: no error line for %s", name, code)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCapacityMatchesGo compares the scripts' caps with trypema.Capacity
// over many rates, windows and factors, including the per-minute rates
// whose capacity needs the 1e-9 epsilon, and the zero-capacity message's
// shortest window with Go's.
func TestCapacityMatchesGo(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	rng := rand.New(rand.NewPCG(*flagSeed, 99))
	windows := []int64{1, 7, 999, 1000, 60000, 3_600_000, 86_400_000, 34_560_000_000}
	ctors := []func(float64) (trypema.Rate, error){trypema.PerSecond, trypema.PerMinute, trypema.PerHour, trypema.PerDay, trypema.PerWeek, trypema.PerMonth}
	shortest := regexp.MustCompile(`at least (\S+)`)
	checked, zero := 0, 0
	for i := range 3000 {
		var v float64
		switch i % 3 {
		case 0:
			v = float64(rng.IntN(1000) + 1)
		case 1:
			v = rng.Float64() * 100
		default:
			v = math.Pow(10, rng.Float64()*40-20)
		}
		r, err := ctors[rng.IntN(len(ctors))](v)
		if err != nil {
			continue
		}
		w := windows[rng.IntN(len(windows))]
		if rng.IntN(2) == 0 {
			w = rng.Int64N(100_000) + 1
		}
		hf := []float64{1, 1.5, 1 + rng.Float64()*5, 1e300}[rng.IntN(4)]
		soft, hard, gerr := trypema.Capacity(r, w, hf)
		kb, km := "cap:{k}:buckets", "cap:{k}:meta"
		got, err := run(c, sc["set_if"], false, []string{kb, km}, fi(w), ff(hf), ff(float64(r)), "always", "1", "replace", "1000")
		if gerr != nil {
			zero++
			if errCode(err) != "TRYPEMA_ZERO_CAPACITY" {
				t.Fatalf("rate %v window %d: got %v %v, want TRYPEMA_ZERO_CAPACITY", r, w, fmtReply(got), err)
			}
			g, l := shortest.FindStringSubmatch(gerr.Error()), shortest.FindStringSubmatch(err.Error())
			if (g == nil) != (l == nil) || (g != nil && g[1] != l[1]) {
				t.Fatalf("rate %v window %d: Lua says %q, Go %q", r, w, err, gerr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("rate %v window %d hf %v: %v", r, w, hf, err)
		}
		raw, err := redis.Values(c.Do("HMGET", km, "soft", "hard"))
		if err == nil && raw[0] == nil && w < 50 {
			// The key's TTL is the window: with a window of a few ms it can
			// expire before this read. Nothing to compare then.
			continue
		}
		caps, err := redis.Int64s(raw, err)
		if err != nil || caps[0] != soft || caps[1] != hard {
			t.Fatalf("rate %v window %d hf %v: caps %v %v, want %d %d", r, w, hf, caps, err, soft, hard)
		}
		checked++
	}
	t.Logf("%d capacities and %d zero capacities agree", checked, zero)
}

// TestHugeTotals: suppressed totals count declined calls too, so they can
// pass 2^53 − 1 (where Lua's doubles stop being exact); the key must keep
// working rather than call its own state corrupt.
func TestHugeTotals(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	kb, km := "huge:{k}:buckets", "huge:{k}:meta"
	mc := fi(maxCount)
	inc := func(n string, want ...interface{}) {
		t.Helper()
		got, err := run(c, sc["suppressed_inc"], false, []string{kb, km}, "10000", "100", "1", "100", "1e300", n, "0.5", "5000")
		if err != nil {
			t.Fatalf("suppressed_inc %s: %v", n, err)
		}
		if d := diffReply(got, want); d != "" {
			t.Fatalf("suppressed_inc %s: %s", n, d)
		}
	}
	inc(mc, "allowed", int64(1), int64(maxCount), int64(0), "0")
	inc(mc, "suppressed", int64(0), int64(maxCount), int64(0), "1")
	inc("5", "suppressed", int64(0), int64(maxCount), int64(0), "1")
	// Beyond 2^53 the totals are rounded to doubles: accepted usage is
	// 2^53 − 1 in Go but may read a few units off here.
	got, err := run(c, sc["suppressed_get"], true, []string{kb, km}, "10000", "100", "5000")
	if err != nil || got[0].(int64) != 1 || got[1].(int64) < 2*maxCount || got[1].(int64)-got[2].(int64) < maxCount-8 {
		t.Fatalf("suppressed_get: %v %v", fmtReply(got), err)
	}
	t.Logf("suppressed_get: %v", fmtReply(got))
	got, err = run(c, sc["delete"], false, []string{kb, km}, "10000", "accepted", "5000")
	if err != nil || got[0].(int64) != 1 || got[1].(int64) < maxCount-8 || got[1].(int64) > maxCount+8 {
		t.Fatalf("delete: %v %v", fmtReply(got), err)
	}
	t.Logf("delete: %v (exact: %d)", fmtReply(got), int64(maxCount))
}

// TestListGoneFirst covers the mirrors of the list's ends in the meta hash
// telling of a list that is gone: both keys get the same TTL, the list's
// first, so when the two PEXPIREs straddle a clock tick the list expires a
// millisecond before the meta, and a caller whose clock is behind the
// server's may still see the key live. A write notices before writing
// anything and treats the key as forgotten, as when both keys are gone.
func TestListGoneFirst(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	absInc := func(kb, km string, n, now int64) ([]interface{}, error) {
		return run(c, sc["absolute_inc"], false, []string{kb, km}, "10000", "100", "10", fi(n), fi(now))
	}
	supInc := func(kb, km string, n, now int64) ([]interface{}, error) {
		return run(c, sc["suppressed_inc"], false, []string{kb, km}, "10000", "100", "1.5", "100", "10", fi(n), "0.5", fi(now))
	}
	// 10/s over 10 s: C = S = 100, H = 150.
	cases := []struct {
		name   string
		inc    func(kb, km string, n, now int64) ([]interface{}, error)
		before []int64 // calls of 30 units at these times, then the list goes
		at     int64   // a call of 5 units
		want   []interface{}
	}{
		{"absolute, joining the newest bucket", absInc, []int64{1_000_000}, 1_000_050, []interface{}{"allowed", int64(100), int64(95), int64(0), int64(0)}},
		{"absolute, a new bucket", absInc, []int64{1_000_000}, 1_000_500, []interface{}{"allowed", int64(100), int64(95), int64(0), int64(0)}},
		{"absolute, a new bucket after an expiry", absInc, []int64{1_000_000, 1_005_000}, 1_010_200, []interface{}{"allowed", int64(100), int64(95), int64(0), int64(0)}},
		{"suppressed, joining the newest bucket", supInc, []int64{1_000_000}, 1_000_050, []interface{}{"allowed", int64(1), int64(100), int64(95), "0"}},
		{"suppressed, a new bucket", supInc, []int64{1_000_000}, 1_000_500, []interface{}{"allowed", int64(1), int64(100), int64(95), "0"}},
	}
	for i, tc := range cases {
		kb, km := fmt.Sprintf("gone:{%d}:buckets", i), fmt.Sprintf("gone:{%d}:meta", i)
		for _, at := range tc.before {
			if _, err := tc.inc(kb, km, 30, at); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		if n, _ := redis.Int64(c.Do("HLEN", km)); n < 7 {
			t.Fatalf("%s: the meta has %d fields, no mirrors", tc.name, n)
		}
		if _, err := c.Do("DEL", kb); err != nil {
			t.Fatal(err)
		}
		got, err := tc.inc(kb, km, 5, tc.at)
		if err != nil || diffReply(got, tc.want) != "" {
			t.Fatalf("%s: got %v %v, want %v", tc.name, fmtReply(got), err, tc.want)
		}
		list, _ := redis.Strings(c.Do("LRANGE", kb, 0, -1))
		meta, _ := redis.StringMap(c.Do("HGETALL", km))
		b := fmt.Sprintf("%d:%d:5:0", tc.at, tc.at)
		if len(list) != 1 || list[0] != b || meta["total"] != "5" || meta["newest"] != b || meta["oldest"] != b || meta["rate"] != "10" {
			t.Fatalf("%s: buckets %v, meta %v", tc.name, list, meta)
		}
		for _, k := range []string{kb, km} {
			if ttl, _ := redis.Int64(c.Do("PTTL", k)); ttl <= 0 || ttl > 10000 {
				t.Fatalf("%s: PTTL %s = %d", tc.name, k, ttl)
			}
		}
	}
}

// TestMirrors checks the meta's mirrors of the list's ends: a meta without
// them (an older version's, or one set_if or a hybrid release left) is read
// through the list and gets them at the next record; unreadable ones are
// corrupt state for the scripts that use them, and ignored by those that
// read the list itself.
func TestMirrors(t *testing.T) {
	srv := redistest.Start(t)
	sc := loadScripts(t)
	c := srv.Dial(t)
	kb, km := "mirror:{k}:buckets", "mirror:{k}:meta"
	do := func(cmd string, args ...interface{}) {
		t.Helper()
		if _, err := c.Do(cmd, args...); err != nil {
			t.Fatal(err)
		}
	}
	oldLayout := func() {
		do("DEL", kb, km)
		do("RPUSH", kb, "1000000:1000000:3:0", "1000200:1000250:4:0")
		do("HSET", km, "rate", "10", "soft", "100", "hard", "100", "total", "7", "declined", "0")
	}
	oldLayout()
	got, err := run(c, sc["absolute_inc"], false, []string{kb, km}, "10000", "100", "10", "1", "1000260")
	if err != nil || diffReply(got, []interface{}{"allowed", int64(100), int64(92), int64(0), int64(0)}) != "" {
		t.Fatalf("absolute_inc on the old layout: %v %v", fmtReply(got), err)
	}
	m, _ := redis.StringMap(c.Do("HGETALL", km))
	if m["newest"] != "1000200:1000260:5:0" || m["oldest"] != "1000000:1000000:3:0" {
		t.Fatalf("mirrors after the first record: %v", m)
	}

	for _, name := range []string{"absolute_inc", "absolute_is_allowed", "absolute_get", "suppressed_inc", "suppressed_factor", "suppressed_get", "delete"} {
		oldLayout()
		do("HSET", km, "newest", "1000200:1000250:4", "oldest", "1000000:1000000:3:0")
		before := dumpKeys(t, c, kb, km)
		args := map[string][]string{
			"absolute_inc": {"10000", "100", "10", "1", "1000260"}, "absolute_is_allowed": {"10000", "1000260"},
			"absolute_get": {"10000", "1000260"}, "suppressed_inc": {"10000", "100", "1", "100", "10", "1", "0.5", "1000260"},
			"suppressed_factor": {"10000", "100", "1000260"}, "suppressed_get": {"10000", "100", "1000260"},
			"delete": {"10000", "total", "1000260"},
		}[name]
		_, err := run(c, sc[name], false, []string{kb, km}, args...)
		if name == "delete" { // reads the list itself
			if err != nil {
				t.Fatalf("delete with unreadable mirrors: %v", err)
			}
			continue
		}
		if errCode(err) != "TRYPEMA_CORRUPT" {
			t.Errorf("%s with an unreadable newest mirror: %v, want TRYPEMA_CORRUPT", name, err)
		}
		if dumpKeys(t, c, kb, km) != before {
			t.Errorf("%s with an unreadable newest mirror wrote", name)
		}
	}
}
