package httplimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/trypema-go/trypema"
)

// Limiter is what the middleware needs of a limiter: every Trypema limiter
// (trypema.Limiter) has it.
type Limiter interface {
	Inc(ctx context.Context, key string, rate trypema.Rate, n int64) (trypema.Decision, error)
}

// CostFunc returns the rate and the count of units that a request asks for.
type CostFunc func(r *http.Request) (rate trypema.Rate, n int64, err error)

// ErrorHandler answers a request that could not be decided. err wraps
// ErrNoKey when the request carries no key, trypema.ErrRedisUnavailable
// when Redis is unreachable and the middleware fails closed, and otherwise
// the limiter's or the key function's error.
type ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

// FailureMode is what the middleware does when the limiter cannot reach
// Redis.
type FailureMode uint8

const (
	// FailOpen serves the request without a limit (the default).
	FailOpen FailureMode = iota
	// FailClosed answers 503 Service Unavailable (through the error handler).
	FailClosed
)

func (m FailureMode) String() string {
	switch m {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return fmt.Sprintf("FailureMode(%d)", uint8(m))
}

// HeaderSet selects the header fields the middleware sends; combine with |.
// Retry-After is sent on every 429 whatever the set.
type HeaderSet uint8

const (
	// IETFHeaders: RateLimit-Policy and RateLimit
	// (draft-ietf-httpapi-ratelimit-headers-11).
	IETFHeaders HeaderSet = 1 << iota
	// LegacyHeaders: X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (seconds from now).
	LegacyHeaders
	// DegradedHeader: Trypema-Degraded on decisions made without Redis.
	DegradedHeader

	// DefaultHeaders is what the middleware sends unless told otherwise.
	DefaultHeaders = IETFHeaders | DegradedHeader
)

// Header field names the middleware writes.
const (
	HeaderRateLimit       = "RateLimit"
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRetryAfter      = "Retry-After"
	HeaderLegacyLimit     = "X-RateLimit-Limit"
	HeaderLegacyRemaining = "X-RateLimit-Remaining"
	HeaderLegacyReset     = "X-RateLimit-Reset"
	HeaderDegraded        = "Trypema-Degraded"
)

// ErrNoKey reports that a request carries nothing to key it by (for
// example, KeyByHeader's header is missing). The default error handler
// answers 400.
var ErrNoKey = errors.New("httplimit: the request has no rate-limit key")

// Option configures New.
type Option func(*config)

type config struct {
	key      KeyFunc
	count    int64
	cost     CostFunc
	window   time.Duration
	policy   string
	headers  HeaderSet
	failure  FailureMode
	denied   http.Handler
	onError  ErrorHandler
	logger   *slog.Logger
	timeout  time.Duration
	badOpt   error // the first invalid option, reported by New
	countSet bool
}

func (c *config) invalid(format string, a ...any) {
	if c.badOpt == nil {
		c.badOpt = fmt.Errorf("%w: httplimit: "+format, append([]any{trypema.ErrInvalidOption}, a...)...)
	}
}

// WithKey sets how a request's key is found (default KeyByIP()).
func WithKey(f KeyFunc) Option {
	return func(c *config) {
		if f == nil {
			c.invalid("WithKey(nil); pass a KeyFunc such as KeyByIP()")
			return
		}
		c.key = f
	}
}

// WithCount sets the units every request costs (default 1).
func WithCount(n int64) Option {
	return func(c *config) {
		if err := trypema.ValidateCount(n); err != nil {
			c.invalid("WithCount: %v", err)
			return
		}
		c.count, c.countSet = n, true
	}
}

// WithCost computes each request's rate and count from the request; it
// replaces New's rate and WithCount. An error it returns goes to the error
// handler (wrap ErrNoKey for a 400).
func WithCost(f CostFunc) Option {
	return func(c *config) {
		if f == nil {
			c.invalid("WithCost(nil)")
			return
		}
		c.cost = f
	}
}

// WithWindow tells the middleware the limiter's window, which the header
// fields report (w, and t of admitted requests). It must equal the window
// the limiter was built with; the default, 10 s, is the limiters' default.
func WithWindow(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.invalid("WithWindow(%v): the window must be at least 1ms", d)
			return
		}
		c.window = d
	}
}

// WithPolicyName names the quota policy in the header fields (default
// "default"): 1 to 64 printable ASCII characters.
func WithPolicyName(name string) Option {
	return func(c *config) {
		if len(name) == 0 || len(name) > 64 {
			c.invalid("WithPolicyName(%q): the name must be 1 to 64 characters", name)
			return
		}
		for i := 0; i < len(name); i++ {
			if name[i] < 0x20 || name[i] > 0x7e {
				c.invalid("WithPolicyName(%q): the name must be printable ASCII", name)
				return
			}
		}
		c.policy = name
	}
}

// WithHeaders selects the header fields to send (default DefaultHeaders);
// WithHeaders(0) sends no quota headers.
func WithHeaders(h HeaderSet) Option {
	return func(c *config) { c.headers = h }
}

// WithFailureMode sets what happens when the limiter cannot reach Redis
// (default FailOpen).
func WithFailureMode(m FailureMode) Option {
	return func(c *config) {
		if m > FailClosed {
			c.invalid("unknown failure mode %d; use FailOpen or FailClosed", m)
			return
		}
		c.failure = m
	}
}

// WithDeniedHandler replaces the answer to a refused request. The quota
// header fields and Retry-After are already set when h runs, and
// DecisionFrom(r.Context()) gives the decision; h should answer 429.
func WithDeniedHandler(h http.Handler) Option {
	return func(c *config) {
		if h == nil {
			c.invalid("WithDeniedHandler(nil)")
			return
		}
		c.denied = h
	}
}

// WithErrorHandler replaces the answer to a request that could not be
// decided (default: 400 for ErrNoKey, 503 for trypema.ErrRedisUnavailable,
// 500 otherwise). The middleware has logged the error already.
func WithErrorHandler(f ErrorHandler) Option {
	return func(c *config) {
		if f == nil {
			c.invalid("WithErrorHandler(nil)")
			return
		}
		c.onError = f
	}
}

// WithLogger sets where errors are logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.invalid("WithLogger(nil)")
			return
		}
		c.logger = l
	}
}

// WithTimeout bounds each limiter call (default: only the request's own
// context). A call that runs out of time counts as Redis being unreachable.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithTimeout(%v): the timeout must be positive", d)
			return
		}
		c.timeout = d
	}
}

// Middleware rate-limits the requests of the handlers it wraps. It is safe
// for concurrent use.
type Middleware struct {
	lim     Limiter
	rate    trypema.Rate
	cfg     config
	windowS int64 // the window in whole seconds, rounded up
	policy  string
	quiet   logGate // warnings about Redis, at most one a second
}

// New returns middleware that asks lim for each request's units at rate
// (see WithCount and WithCost).
func New(lim Limiter, rate trypema.Rate, opts ...Option) (*Middleware, error) {
	if lim == nil {
		return nil, fmt.Errorf("%w: httplimit: the limiter is nil", trypema.ErrInvalidArg)
	}
	c := config{key: KeyByIP(), count: 1, window: trypema.DefaultWindow, policy: "default", headers: DefaultHeaders}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.badOpt != nil {
		return nil, c.badOpt
	}
	if c.cost == nil {
		if err := trypema.ValidateRate(rate); err != nil {
			return nil, err
		}
	} else if c.countSet {
		return nil, fmt.Errorf("%w: httplimit: WithCount and WithCost both set the count; use one", trypema.ErrInvalidOption)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.onError == nil {
		c.onError = DefaultErrorHandler
	}
	if c.denied == nil {
		c.denied = http.HandlerFunc(defaultDenied)
	}
	return &Middleware{
		lim: lim, rate: rate, cfg: c,
		windowS: ceilSeconds(c.window),
		policy:  sfString(c.policy),
	}, nil
}

type decisionKey struct{}

// DecisionFrom returns the decision the middleware made for the request
// whose context is ctx: in the handlers it wraps and in the denied handler.
func DecisionFrom(ctx context.Context) (trypema.Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(trypema.Decision)
	return d, ok
}

// Handler returns next behind the limit.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := m.decide(r)
		if err != nil {
			if !errors.Is(err, trypema.ErrRedisUnavailable) {
				m.fail(w, r, err)
				return
			}
			if r.Context().Err() != nil {
				return // the client has gone; nobody reads an answer
			}
			m.warn("httplimit: rate limiter unavailable", "mode", m.cfg.failure.String(), "err", err)
			if m.cfg.failure == FailClosed {
				m.setDegraded(w.Header(), FailClosed)
				m.cfg.onError(w, r, err)
				return
			}
			d = trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Degraded: true}
		}
		if d.Degraded {
			// Decided without Redis, by FailOpen above or by the
			// limiter's own failure policy: no quota to report.
			if err == nil {
				m.warn("httplimit: the limiter decided without Redis (its failure policy)", "admitted", d.Admitted)
			}
			if !d.Admitted {
				m.setDegraded(w.Header(), FailClosed)
				m.cfg.onError(w, r, errRefused)
				return
			}
			m.setDegraded(w.Header(), FailOpen)
		} else {
			m.writeQuota(w.Header(), d)
		}
		r = r.WithContext(context.WithValue(r.Context(), decisionKey{}, d))
		if d.Admitted {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set(HeaderRetryAfter, strconv.FormatInt(m.wait(d), 10))
		m.cfg.denied.ServeHTTP(w, r)
	})
}

// decide runs the key and cost functions and asks the limiter.
func (m *Middleware) decide(r *http.Request) (trypema.Decision, error) {
	key, err := m.cfg.key(r)
	if err != nil {
		return trypema.Decision{}, err
	}
	rate, n := m.rate, m.cfg.count
	if m.cfg.cost != nil {
		if rate, n, err = m.cfg.cost(r); err != nil {
			return trypema.Decision{}, err
		}
	}
	ctx := r.Context()
	if m.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.timeout)
		defer cancel()
	}
	return m.lim.Inc(ctx, key, rate, n)
}

// warn logs a warning about Redis, at most one a second, with the count
// of the warnings left out since the last.
func (m *Middleware) warn(msg string, args ...any) {
	if n, ok := m.quiet.open(); ok {
		m.cfg.logger.Warn(msg, append(args, "similar_since_last", n)...)
	}
}

// fail answers a request that could not be decided for a reason other
// than Redis: no key (the client's doing, so not logged) or an error of
// the key function, the cost function or the limiter (logged).
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, ErrNoKey) {
		m.cfg.logger.Error("httplimit: rate limiter error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	m.cfg.onError(w, r, err)
}

// errRefused is the error handler's argument when the limiter's own
// failure policy refused a request.
var errRefused = fmt.Errorf("%w: the limiter's failure policy refused the request", trypema.ErrRedisUnavailable)

func (m *Middleware) setDegraded(h http.Header, mode FailureMode) {
	if m.cfg.headers&DegradedHeader != 0 {
		h.Set(HeaderDegraded, mode.String())
	}
}

// wait is the effective window t of a decision, in whole seconds rounded
// up: the exact wait of a rejection, 1 for a suppressed denial, else the
// window.
func (m *Middleware) wait(d trypema.Decision) int64 {
	switch {
	case d.Admitted:
		return m.windowS
	case d.Outcome == trypema.Rejected:
		return max(1, ceilSeconds(d.RetryAfter))
	default:
		return 1
	}
}

// writeQuota sets the quota header fields of d.
func (m *Middleware) writeQuota(h http.Header, d trypema.Decision) {
	if m.cfg.headers&(IETFHeaders|LegacyHeaders) == 0 || d.Limit <= 0 {
		return
	}
	q, r, t := sfInt(d.Limit), sfInt(max(0, d.Remaining)), m.wait(d)
	if m.cfg.headers&IETFHeaders != 0 {
		h.Set(HeaderRateLimitPolicy, m.policy+";q="+strconv.FormatInt(q, 10)+";w="+strconv.FormatInt(m.windowS, 10))
		v := m.policy + ";r=" + strconv.FormatInt(r, 10) + ";t=" + strconv.FormatInt(t, 10)
		if d.Outcome == trypema.Suppressed {
			v += ";trypema-factor=" + sfDecimal(d.SuppressionFactor)
		}
		h.Set(HeaderRateLimit, v)
	}
	if m.cfg.headers&LegacyHeaders != 0 {
		h.Set(HeaderLegacyLimit, strconv.FormatInt(q, 10))
		h.Set(HeaderLegacyRemaining, strconv.FormatInt(r, 10))
		h.Set(HeaderLegacyReset, strconv.FormatInt(t, 10))
	}
}

func defaultDenied(w http.ResponseWriter, r *http.Request) {
	msg := "429 too many requests"
	if s := w.Header().Get(HeaderRetryAfter); s != "" {
		msg += "; retry after " + s + " s"
	}
	http.Error(w, msg, http.StatusTooManyRequests)
}

// DefaultErrorHandler answers 400 for ErrNoKey, 503 for
// trypema.ErrRedisUnavailable and 500 for anything else, with a short
// text body that reveals no details.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoKey):
		http.Error(w, "400 bad request: the request has no rate-limit key", http.StatusBadRequest)
	case errors.Is(err, trypema.ErrRedisUnavailable):
		http.Error(w, "503 service unavailable: rate limiter unavailable", http.StatusServiceUnavailable)
	default:
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
	}
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// logGate lets one log line through per second and counts the others.
type logGate struct {
	last    atomic.Int64 // Unix ns of the last line let through
	dropped atomic.Int64
}

func (g *logGate) open() (dropped int64, ok bool) {
	now := time.Now().UnixNano()
	last := g.last.Load()
	if now-last < int64(time.Second) || !g.last.CompareAndSwap(last, now) {
		g.dropped.Add(1)
		return 0, false
	}
	return g.dropped.Swap(0), true
}
