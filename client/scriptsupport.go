package client

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/lua"
)

// This file is the hand-written runtime of the generated script wrappers in
// scripts_gen.go: the Script type, EVALSHA with NOSCRIPT recovery, error
// mapping and reply decoding.

// Script is one Lua script of the v1 contract: its standalone source (as
// EVAL and SCRIPT LOAD get it) and what a call needs to know about it.
// The generated <Name>Script variables are the only instances.
type Script struct {
	name     string
	src      string
	sha      string
	shaArg   any // sha, boxed once so that calls do not box it again
	fnArg    any // the Functions library's name for it, boxed once
	readOnly bool
	numKeys  int
}

func newScript(name, src string, readOnly bool, numKeys int) *Script {
	sum := sha1.Sum([]byte(src))
	sha := hex.EncodeToString(sum[:])
	return &Script{name: name, src: src, sha: sha, shaArg: sha, fnArg: FunctionPrefix + name, readOnly: readOnly, numKeys: numKeys}
}

// embeddedScript builds a Script from the source embedded in package lua.
// Both are generated together, so a missing source is a broken build.
func embeddedScript(name string, readOnly bool, numKeys int) *Script {
	src, ok := lua.Script(name)
	if !ok {
		panic("client: script " + name + " is not embedded in package lua; run make generate")
	}
	return newScript(name, src, readOnly, numKeys)
}

// Name returns the script's name, for example "absolute_inc".
func (s *Script) Name() string { return s.name }

// Source returns the standalone script text (lib.lua and the script).
func (s *Script) Source() string { return s.src }

// SHA1 returns the hex SHA1 of Source: the EVALSHA digest.
func (s *Script) SHA1() string { return s.sha }

// ReadOnly reports whether the script never writes (flagged no-writes).
func (s *Script) ReadOnly() bool { return s.readOnly }

// NumKeys returns how many KEYS the script takes.
func (s *Script) NumKeys() int { return s.numKeys }

// AllScripts returns every generated script, in name order.
func AllScripts() []*Script { return append([]*Script(nil), scriptList...) }

// evalArgs starts an EVALSHA argument list (digest, numkeys, keys) with room
// for nargs more arguments.
func (s *Script) evalArgs(keys []string, nargs int) []any {
	a := make([]any, 0, 2+len(keys)+nargs)
	a = append(a, s.shaArg, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return a
}

// Opt is an optional script argument; the zero value is unset. An unset
// argument is sent as "" when a later one is set, and omitted otherwise.
type Opt[T any] struct {
	V   T
	Set bool
}

// Some returns a set optional argument.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Set: true} }

func appendOptInt(dst []any, o Opt[int64]) []any {
	if !o.Set {
		return append(dst, "")
	}
	return append(dst, o.V)
}

func appendOptFloat(dst []any, o Opt[float64]) []any {
	if !o.Set {
		return append(dst, "")
	}
	return append(dst, strconv.FormatFloat(o.V, 'g', -1, 64))
}

func appendOptString(dst []any, o Opt[string]) []any {
	if !o.Set {
		return append(dst, "")
	}
	return append(dst, o.V)
}

// FunctionPrefix starts the name of every function of the Functions
// library (lua/functions.lua): trypema_v1_absolute_inc and so on.
const FunctionPrefix = "trypema_v1_"

// Scripts runs the scripts on a Redis reached through a redigo pool.
type Scripts struct {
	pool      *redis.Pool
	evalRO    bool
	functions bool
}

// ScriptsOption configures NewScripts.
type ScriptsOption func(*Scripts)

// WithEvalRO makes read-only scripts run with EVALSHA_RO (Redis 7+), which
// replicas accept and which Redis refuses for a script that tries to write.
// By default every script runs with EVALSHA.
func WithEvalRO() ScriptsOption { return func(s *Scripts) { s.evalRO = true } }

// WithFunctions runs the scripts as the functions of the Redis Functions
// library (FCALL, and FCALL_RO for read-only ones; Redis 7+) instead of
// EVALSHA. A server without the library gets it loaded (FUNCTION LOAD
// REPLACE) on the first call that misses it.
func WithFunctions() ScriptsOption { return func(s *Scripts) { s.functions = true } }

// NewScripts returns a runner of the scripts over pool.
func NewScripts(pool *redis.Pool, opts ...ScriptsOption) *Scripts {
	s := &Scripts{pool: pool}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Load loads every script into the script cache (SCRIPT LOAD), so that the
// first calls need no NOSCRIPT round trip. Calls work without it.
func (s *Scripts) Load(ctx context.Context) error {
	c, err := s.conn(ctx, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, sc := range scriptList {
		if err := loadScript(ctx, c, sc); err != nil {
			return err
		}
	}
	return nil
}

// conn borrows a connection, failing early on a context that is done.
func (s *Scripts) conn(ctx context.Context, sc *Script) (redis.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(sc, err)
	}
	c, err := s.pool.GetContext(ctx)
	if err != nil {
		return nil, unavailable(sc, err)
	}
	return c, nil
}

// do runs sc with EVALSHA (args from <Name>Cmd). A NOSCRIPT reply means the
// script did not run: do loads it and sends EVALSHA once more, so a call
// runs the script exactly once.
func (s *Scripts) do(ctx context.Context, sc *Script, args []any) (any, error) {
	c, err := s.conn(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if s.functions {
		return s.fcall(ctx, c, sc, args)
	}
	cmd := "EVALSHA"
	if s.evalRO && sc.readOnly {
		cmd = "EVALSHA_RO"
	}
	v, err := doContext(ctx, c, cmd, args...)
	if IsNoScript(err) {
		if err := loadScript(ctx, c, sc); err != nil {
			return nil, err
		}
		v, err = doContext(ctx, c, cmd, args...)
	}
	if err != nil {
		return nil, sc.WrapError(ctx, err)
	}
	return v, nil
}

// fcall runs sc as a function of the library: args are EVALSHA's with the
// digest replaced by the function's name. A missing function did not run,
// so loading the library and calling once more runs it exactly once.
func (s *Scripts) fcall(ctx context.Context, c redis.Conn, sc *Script, args []any) (any, error) {
	args[0] = sc.fnArg
	cmd := "FCALL"
	if sc.readOnly {
		cmd = "FCALL_RO"
	}
	v, err := doContext(ctx, c, cmd, args...)
	if isNoFunction(err) {
		if _, err := doContext(ctx, c, "FUNCTION", "LOAD", "REPLACE", lua.Functions()); err != nil {
			return nil, sc.WrapError(ctx, err)
		}
		v, err = doContext(ctx, c, cmd, args...)
	}
	if err != nil {
		return nil, sc.WrapError(ctx, err)
	}
	return v, nil
}

// isNoFunction reports whether err is Redis's reply to FCALL of a function
// it does not have.
func isNoFunction(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), "ERR Function not found")
}

// loadScript runs SCRIPT LOAD on c and checks the digest Redis computed.
func loadScript(ctx context.Context, c redis.Conn, sc *Script) error {
	sha, err := redis.String(doContext(ctx, c, "SCRIPT", "LOAD", sc.src))
	if err != nil {
		return sc.WrapError(ctx, err)
	}
	if sha != sc.sha {
		return fmt.Errorf("%w: %s: SCRIPT LOAD returned digest %s, want %s", trypema.ErrUnexpectedReply, sc.name, sha, sc.sha)
	}
	return nil
}

// doContext is redis.DoContext, minus its per-call goroutine when ctx can
// never be done.
func doContext(ctx context.Context, c redis.Conn, cmd string, args ...any) (any, error) {
	if ctx.Done() == nil {
		return c.Do(cmd, args...)
	}
	return redis.DoContext(c, ctx, cmd, args...)
}

// IsNoScript reports whether err is Redis's NOSCRIPT error reply: the
// script is not in the server's cache and did not run.
func IsNoScript(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), "NOSCRIPT ")
}

// ScriptError is an error reply of a script, "<CODE> <message>". It wraps
// the root package error its code stands for (trypema.ErrInvalidRate for
// TRYPEMA_RATE, …), so callers test it with errors.Is.
type ScriptError struct {
	Script  string // the script's name
	Code    string // for example "TRYPEMA_RATE"
	Message string // the script's message, after the code
	kind    error
}

func (e *ScriptError) Error() string {
	return fmt.Sprintf("%v: %s (script %s, %s)", e.kind, e.Message, e.Script, e.Code)
}

func (e *ScriptError) Unwrap() error { return e.kind }

// errorCodes maps the scripts' error codes (lua/README.md) to root errors.
var errorCodes = map[string]error{
	"TRYPEMA_ARG":                    trypema.ErrInvalidArg,
	"TRYPEMA_KEYS":                   trypema.ErrInvalidArg,
	"TRYPEMA_RATE":                   trypema.ErrInvalidRate,
	"TRYPEMA_WINDOW":                 trypema.ErrInvalidWindow,
	"TRYPEMA_BUCKET":                 trypema.ErrInvalidBucket,
	"TRYPEMA_FACTOR":                 trypema.ErrInvalidFactor,
	"TRYPEMA_COUNT":                  trypema.ErrInvalidCount,
	"TRYPEMA_ZERO_CAPACITY":          trypema.ErrZeroCapacity,
	"TRYPEMA_COUNT_EXCEEDS_CAPACITY": trypema.ErrCountExceedsCapacity,
	"TRYPEMA_WRONGTYPE":              trypema.ErrUnexpectedReply,
	"TRYPEMA_CORRUPT":                trypema.ErrUnexpectedReply,
}

// unavailableCodes are error replies of a server that cannot serve the call
// now (loading, busy, failing over, out of memory, read-only replica, or a
// cache flushed again between SCRIPT LOAD and the retry).
var unavailableCodes = []string{
	"LOADING", "BUSY", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN",
	"OOM", "MOVED", "ASK", "NOREPLICAS", "NOSCRIPT",
}

// WrapError turns an error from running s, an error reply or a connection
// failure, into the error a limiter returns:
//   - a script's "<CODE> <message>" reply: a *ScriptError wrapping the
//     root error of the code;
//   - an error reply of an unavailable server (LOADING, BUSY, READONLY, …)
//     and any connection or I/O error: trypema.ErrRedisUnavailable and the
//     cause, so that context.Canceled and context.DeadlineExceeded stay
//     visible to errors.Is;
//   - any other error reply (a failing script, an unknown code):
//     trypema.ErrUnexpectedReply naming the script.
//
// ctx is the call's context: when it is done, its error joins a connection
// error, since redigo turns a context deadline into a read timeout that may
// fire first. Pipelines use WrapError on the errors of the replies they
// receive; the generated call methods use it already.
func (s *Script) WrapError(ctx context.Context, err error) error {
	var re redis.Error
	if !errors.As(err, &re) {
		if ctxErr := contextError(ctx); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return unavailable(s, err)
	}
	code, msg, _ := strings.Cut(string(re), " ")
	if kind, ok := errorCodes[code]; ok {
		return &ScriptError{Script: s.name, Code: code, Message: msg, kind: kind}
	}
	for _, c := range unavailableCodes {
		if code == c {
			return unavailable(s, err)
		}
	}
	return fmt.Errorf("%w: %s: error reply: %w", trypema.ErrUnexpectedReply, s.name, err)
}

// contextError is ctx.Err(), or DeadlineExceeded once the deadline has
// passed even if ctx's timer has not fired yet: the connection's read
// deadline, set to the same instant, may expire first.
func contextError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func unavailable(s *Script, err error) error {
	if s == nil {
		return fmt.Errorf("%w: %w", trypema.ErrRedisUnavailable, err)
	}
	return fmt.Errorf("%w: %s: %w", trypema.ErrRedisUnavailable, s.name, err)
}

// replyDecoder checks a script reply's shape element by element; the first
// problem is kept in err and later elements are skipped.
type replyDecoder struct {
	script *Script
	vals   []any
	err    error
}

// newReplyDecoder checks that v is an array of n elements. An error reply
// passed as a value (as in the replies of EXEC) is returned as its error.
func newReplyDecoder(s *Script, v any, n int) (replyDecoder, error) {
	switch v := v.(type) {
	case []any:
		if len(v) != n {
			return replyDecoder{}, s.replyError("got an array of %d elements, want %d", len(v), n)
		}
		return replyDecoder{script: s, vals: v}, nil
	case redis.Error:
		return replyDecoder{}, s.WrapError(context.Background(), v)
	default:
		return replyDecoder{}, s.replyError("got %s, want an array of %d elements", describe(v), n)
	}
}

func (s *Script) replyError(format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", trypema.ErrUnexpectedReply, s.name, fmt.Sprintf(format, a...))
}

func (d *replyDecoder) fail(i int, name, want string) {
	d.err = d.script.replyError("element %d (%s): got %s, want %s", i+1, name, describe(d.vals[i]), want)
}

// intAt decodes element i, an integer reply.
func (d *replyDecoder) intAt(i int, name string) int64 {
	if d.err != nil {
		return 0
	}
	v, ok := d.vals[i].(int64)
	if !ok {
		d.fail(i, name, "an integer")
	}
	return v
}

// bulkAt returns element i, a bulk string.
func (d *replyDecoder) bulkAt(i int, name, want string) ([]byte, bool) {
	if d.err != nil {
		return nil, false
	}
	switch v := d.vals[i].(type) {
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	}
	d.fail(i, name, want)
	return nil, false
}

// floatAt decodes element i, a finite float in a bulk string.
func (d *replyDecoder) floatAt(i int, name string) float64 {
	b, ok := d.bulkAt(i, name, "a float in a bulk string")
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.fail(i, name, "a finite float")
		return 0
	}
	return f
}

// stringAt decodes element i, a bulk string.
func (d *replyDecoder) stringAt(i int, name string) string {
	b, ok := d.bulkAt(i, name, "a bulk string")
	if !ok {
		return ""
	}
	return string(b)
}

// describe names a reply value's type and, briefly, its content.
func describe(v any) string {
	const max = 40
	quote := func(s string) string {
		if len(s) > max {
			s = s[:max] + "…"
		}
		return strconv.Quote(s)
	}
	switch v := v.(type) {
	case nil:
		return "nil"
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case []byte:
		return "bulk string " + quote(string(v))
	case string:
		return "string " + quote(v)
	case []any:
		return fmt.Sprintf("array of %d elements", len(v))
	case redis.Error:
		return "error reply " + quote(string(v))
	default:
		return fmt.Sprintf("%T", v)
	}
}
