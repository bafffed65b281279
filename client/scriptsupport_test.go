package client

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/lua"
)

// Test-only scripts, built like the generated ones.
var (
	// incrScript proves how often it ran: each run increments KEYS[1].
	incrScript = newScript("test_incr", "return redis.call('INCR', KEYS[1])", false, 1)
	// errorScript replies with the error reply ARGV[1].
	errorScript = newScript("test_error", "return redis.error_reply(ARGV[1])", true, 1)
	// shapeScript is the script the decoder tests pretend replied.
	shapeScript = newScript("test_shape", "return {}", true, 1)
)

func call(ctx context.Context, s *Scripts, sc *Script, key string, args ...any) (any, error) {
	return s.do(ctx, sc, append(sc.evalArgs([]string{key}, len(args)), args...))
}

// TestNoScriptRecovery: after SCRIPT FLUSH a call still succeeds, by loading
// the script and retrying, and the script runs exactly once per call.
func TestNoScriptRecovery(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool())
	ctx := context.Background()

	for i, flush := range []bool{false, true, false, true, true} {
		if flush {
			srv.Do(t, "SCRIPT", "FLUSH")
		}
		v, err := call(ctx, s, incrScript, "counter")
		if err != nil {
			t.Fatalf("call %d (after flush: %v): %v", i+1, flush, err)
		}
		if v != int64(i+1) {
			t.Fatalf("call %d returned %v, want %d: the script ran more or less than once per call", i+1, v, i+1)
		}
	}
	if got, _ := redis.Int(srv.Do(t, "GET", "counter"), nil); got != 5 {
		t.Errorf("counter = %d after 5 calls", got)
	}
	// Every call was one EVALSHA plus, on the first call and after each of
	// the 3 flushes, one SCRIPT LOAD and one retry: 5 + 4. EVAL never ran.
	stats, _ := redis.String(srv.Do(t, "INFO", "commandstats"), nil)
	for cmd, want := range map[string]string{"evalsha": "calls=9,", "eval": "", "script|load": "calls=4,"} {
		line := regexp.MustCompile(`(?m)^cmdstat_` + regexp.QuoteMeta(cmd) + `:.*$`).FindString(stats)
		if want == "" && line != "" || want != "" && !strings.Contains(line, want) {
			t.Errorf("commandstats for %s: %q, want %q", cmd, line, want)
		}
	}
}

func TestLoadLoadsEveryScript(t *testing.T) {
	srv := redistest.Start(t)
	if err := NewScripts(srv.Pool()).Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	args := []any{"EXISTS"}
	for _, sc := range AllScripts() {
		args = append(args, sc.SHA1())
	}
	exists, err := redis.Ints(srv.Do(t, "SCRIPT", args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, sc := range AllScripts() {
		if exists[i] != 1 {
			t.Errorf("%s is not in the script cache after Load", sc.Name())
		}
	}
}

// TestScriptsMatchPackageLua: every generated Script carries the embedded
// source and its SHA1.
func TestScriptsMatchPackageLua(t *testing.T) {
	var names []string
	for _, sc := range AllScripts() {
		names = append(names, sc.Name())
		src, ok := lua.Script(sc.Name())
		if !ok || src != sc.Source() {
			t.Errorf("%s: source differs from lua.Script", sc.Name())
		}
		sum := sha1.Sum([]byte(src))
		if sc.SHA1() != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: SHA1 %s is not the source's", sc.Name(), sc.SHA1())
		}
		if sc.NumKeys() < 1 {
			t.Errorf("%s: %d keys", sc.Name(), sc.NumKeys())
		}
	}
	if !slices.Equal(names, lua.Names()) {
		t.Errorf("AllScripts = %q, lua.Names = %q", names, lua.Names())
	}
}

// TestErrorRepliesMapToRootErrors covers every code of lua/README.md.
func TestErrorRepliesMapToRootErrors(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool())
	tests := []struct {
		reply string
		kind  error
	}{
		{"TRYPEMA_ARG now_ms: not an integer", trypema.ErrInvalidArg},
		{"TRYPEMA_KEYS 1 keys given, expected exactly 2", trypema.ErrInvalidArg},
		{"TRYPEMA_RATE rate must be positive", trypema.ErrInvalidRate},
		{"TRYPEMA_WINDOW window out of range", trypema.ErrInvalidWindow},
		{"TRYPEMA_BUCKET bucket larger than the window", trypema.ErrInvalidBucket},
		{"TRYPEMA_FACTOR factor below 1", trypema.ErrInvalidFactor},
		{"TRYPEMA_COUNT n must be at least 1", trypema.ErrInvalidCount},
		{"TRYPEMA_ZERO_CAPACITY rate too low for the window", trypema.ErrZeroCapacity},
		{"TRYPEMA_COUNT_EXCEEDS_CAPACITY n=5 exceeds capacity 4", trypema.ErrCountExceedsCapacity},
		{"TRYPEMA_WRONGTYPE meta is a string", trypema.ErrUnexpectedReply},
		{"TRYPEMA_CORRUPT bucket 'x' unparsable", trypema.ErrUnexpectedReply},
	}
	for _, tt := range tests {
		code, msg, _ := strings.Cut(tt.reply, " ")
		_, err := call(context.Background(), s, errorScript, "k", tt.reply)
		if !errors.Is(err, tt.kind) {
			t.Errorf("%s: error %v, want %v", code, err, tt.kind)
		}
		var se *ScriptError
		if !errors.As(err, &se) || se.Code != code || se.Message != msg || se.Script != "test_error" {
			t.Errorf("%s: ScriptError %+v", code, se)
		}
		if errors.Is(err, trypema.ErrRedisUnavailable) {
			t.Errorf("%s: error is also ErrRedisUnavailable", code)
		}
		if e := err.Error(); !strings.Contains(e, msg) || !strings.Contains(e, "test_error") {
			t.Errorf("%s: message %q lacks the script's message or name", code, e)
		}
	}
	// Every code the scripts may use is mapped.
	readme, err := os.ReadFile("../lua/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(TRYPEMA_[A-Z_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		if _, ok := errorCodes[m[1]]; !ok {
			t.Errorf("lua/README.md lists %s, which client does not map", m[1])
		}
	}
}

func TestOtherErrorReplies(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool())
	ctx := context.Background()

	// A failing script and an unknown code are unexpected replies naming the script.
	boom := newScript("test_boom", "error('boom')", false, 1)
	_, err := call(ctx, s, boom, "k")
	if !errors.Is(err, trypema.ErrUnexpectedReply) || !strings.Contains(err.Error(), "test_boom") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("runtime error: %v", err)
	}
	_, err = call(ctx, s, errorScript, "k", "TRYPEMA_NEW_CODE something")
	if !errors.Is(err, trypema.ErrUnexpectedReply) || !strings.Contains(err.Error(), "TRYPEMA_NEW_CODE something") {
		t.Errorf("unknown code: %v", err)
	}
	// A script that does not compile fails at SCRIPT LOAD, the same way.
	broken := newScript("test_broken", "return (", false, 1)
	_, err = call(ctx, s, broken, "k")
	if !errors.Is(err, trypema.ErrUnexpectedReply) || !strings.Contains(err.Error(), "test_broken") {
		t.Errorf("compile error: %v", err)
	}
	var re redis.Error
	if !errors.As(err, &re) || strings.Count(err.Error(), "test_broken") != 1 {
		t.Errorf("the redis.Error is not kept once: %v", err)
	}
}

func TestWrapErrorOfUnavailableServer(t *testing.T) {
	for _, reply := range []string{
		"LOADING Redis is loading the dataset in memory",
		"BUSY Redis is busy running a script",
		"READONLY You can't write against a read only replica.",
		"MASTERDOWN Link with MASTER is down",
		"OOM command not allowed when used memory > 'maxmemory'.",
		"NOSCRIPT No matching script.",
	} {
		err := incrScript.WrapError(context.Background(), redis.Error(reply))
		var re redis.Error
		if !errors.Is(err, trypema.ErrRedisUnavailable) || !errors.As(err, &re) || string(re) != reply {
			t.Errorf("%q: %v", reply, err)
		}
	}
}

// TestEvalRO: with WithEvalRO, read-only scripts run with EVALSHA_RO, which
// Redis refuses for a script that writes; other scripts keep EVALSHA.
func TestEvalRO(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool(), WithEvalRO())
	ctx := context.Background()
	read := newScript("test_read", "return redis.call('EXISTS', KEYS[1])", true, 1)
	if v, err := call(ctx, s, read, "k"); err != nil || v != int64(0) {
		t.Fatalf("read-only script: %v, %v", v, err)
	}
	lying := newScript("test_lying", "return redis.call('INCR', KEYS[1])", true, 1)
	if _, err := call(ctx, s, lying, "k"); !errors.Is(err, trypema.ErrUnexpectedReply) {
		t.Errorf("a writing script flagged read-only ran under EVALSHA_RO: %v", err)
	}
	if v, err := call(ctx, s, incrScript, "k"); err != nil || v != int64(1) {
		t.Errorf("writing script: %v, %v", v, err)
	}
	stats, _ := redis.String(srv.Do(t, "INFO", "commandstats"), nil)
	if !strings.Contains(stats, "cmdstat_evalsha_ro:") {
		t.Errorf("EVALSHA_RO was not used:\n%s", stats)
	}
}

func TestConnectionErrorsWrapTheCause(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	defer pool.Close()
	s := NewScripts(pool)

	_, err = call(context.Background(), s, incrScript, "k")
	var opErr *net.OpError
	if !errors.Is(err, trypema.ErrRedisUnavailable) || !errors.As(err, &opErr) || !strings.Contains(err.Error(), "test_incr") {
		t.Errorf("refused connection: %v", err)
	}
	if err := s.Load(context.Background()); !errors.Is(err, trypema.ErrRedisUnavailable) {
		t.Errorf("Load on a refused connection: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = call(ctx, s, incrScript, "k")
	if !errors.Is(err, trypema.ErrRedisUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
}

// TestDeadlineDuringCall: a context that expires while the script runs
// gives ErrRedisUnavailable and context.DeadlineExceeded.
func TestDeadlineDuringCall(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool())
	slow := newScript("test_slow", `
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 300000
return 1`, true, 1)
	if err := loadScript(context.Background(), srv.Dial(t), slow); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := call(ctx, s, slow, "k")
	if !errors.Is(err, trypema.ErrRedisUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

// TestReplyDecoderShapeErrors: every shape problem is ErrUnexpectedReply,
// names the script and says what was wrong.
func TestReplyDecoderShapeErrors(t *testing.T) {
	decode := func(v any) (int64, float64, string, error) {
		d, err := newReplyDecoder(shapeScript, v, 3)
		if err != nil {
			return 0, 0, "", err
		}
		i, f, s := d.intAt(0, "count"), d.floatAt(1, "factor"), d.stringAt(2, "outcome")
		return i, f, s, d.err
	}
	i, f, s, err := decode([]any{int64(7), []byte("0.10000000000000001"), []byte("allowed")})
	if err != nil || i != 7 || f != 0.1 || s != "allowed" {
		t.Fatalf("good reply: %v %v %q %v", i, f, s, err)
	}
	tests := []struct {
		name  string
		reply any
		want  string
	}{
		{"not an array", int64(1), "got integer 1, want an array of 3 elements"},
		{"nil", nil, "got nil, want an array of 3 elements"},
		{"too short", []any{int64(1), []byte("1")}, "got an array of 2 elements, want 3"},
		{"too long", []any{int64(1), []byte("1"), []byte("x"), int64(4)}, "got an array of 4 elements, want 3"},
		{"int as bulk", []any{[]byte("7"), []byte("1"), []byte("x")}, `element 1 (count): got bulk string "7", want an integer`},
		{"float as int", []any{int64(7), int64(1), []byte("x")}, "element 2 (factor): got integer 1, want a float in a bulk string"},
		{"unparsable float", []any{int64(7), []byte("0.1x"), []byte("x")}, `element 2 (factor): got bulk string "0.1x", want a finite float`},
		{"infinite float", []any{int64(7), []byte("inf"), []byte("x")}, `element 2 (factor): got bulk string "inf", want a finite float`},
		{"nan float", []any{int64(7), []byte("nan"), []byte("x")}, `element 2 (factor): got bulk string "nan", want a finite float`},
		{"string as nil", []any{int64(7), []byte("1"), nil}, "element 3 (outcome): got nil, want a bulk string"},
		{"nested array", []any{int64(7), []byte("1"), []any{}}, "element 3 (outcome): got array of 0 elements, want a bulk string"},
	}
	for _, tt := range tests {
		_, _, _, err := decode(tt.reply)
		if !errors.Is(err, trypema.ErrUnexpectedReply) {
			t.Errorf("%s: %v is not ErrUnexpectedReply", tt.name, err)
			continue
		}
		if want := "test_shape: " + tt.want; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q\nwant it to contain %q", tt.name, err, want)
		}
	}
	// An error reply handed over as a value (as in EXEC replies) keeps its meaning.
	if _, _, _, err := decode(redis.Error("TRYPEMA_RATE bad rate")); !errors.Is(err, trypema.ErrInvalidRate) {
		t.Errorf("error reply as value: %v", err)
	}
}

func TestOptEncoding(t *testing.T) {
	var dst []any
	dst = appendOptInt(dst, Opt[int64]{})
	dst = appendOptInt(dst, Some[int64](1700000000000))
	dst = appendOptFloat(dst, Opt[float64]{})
	dst = appendOptFloat(dst, Some(0.1))
	dst = appendOptFloat(dst, Some(1e300))
	dst = appendOptString(dst, Opt[string]{})
	dst = appendOptString(dst, Some("eq"))
	want := []any{"", int64(1700000000000), "", "0.1", "1e+300", "", "eq"}
	if !slices.Equal(dst, want) {
		t.Errorf("encoded %q, want %q", dst, want)
	}
}

func TestEvalArgs(t *testing.T) {
	a := incrScript.evalArgs([]string{"k1"}, 3)
	if len(a) != 3 || a[0] != incrScript.SHA1() || a[1] != 1 || a[2] != "k1" || cap(a) != 6 {
		t.Errorf("evalArgs = %q (cap %d)", a, cap(a))
	}
}
