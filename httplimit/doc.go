// Package httplimit is net/http middleware that rate-limits requests with
// any Trypema limiter: local, Redis or hybrid, absolute or suppressed.
//
//	lim, _ := localcache.NewAbsolute(trypema.WithWindow(10 * time.Second))
//	mw, err := httplimit.New(lim, trypema.MustPerSecond(5), httplimit.WithWindow(10*time.Second))
//	if err != nil { ... }
//	http.ListenAndServe(addr, mw.Handler(mux))
//
// # What a request costs
//
// Every request asks the limiter for n units (default 1, WithCount) of its
// key at the middleware's rate. WithCost computes the rate and n from the
// request instead, for example per customer plan or per upload size. The
// rate is sticky per key, as everywhere in Trypema.
//
// # Keys
//
// The key says whose quota a request spends. KeyByIP (the default) uses the
// peer address of the connection (Request.RemoteAddr); IPv6 peers are
// grouped by their /64 network, since one host usually holds a whole /64.
// X-Forwarded-For is only believed through KeyByForwardedFor, and only when
// the peer is one of the proxies named there: anybody can send that header.
// KeyByHeader uses a request header such as an API key. Any function of the
// request can be a KeyFunc; keys must satisfy trypema.ValidateKey.
//
// # Answers
//
//	decision                         status            quota headers       Retry-After
//	Allowed                          next handler      yes                 -
//	Suppressed, admitted             next handler      yes, with factor    -
//	Rejected (absolute)              429               yes                 exact wait, rounded up
//	Suppressed, denied               429               yes, with factor    1
//	key function: ErrNoKey           400               -                   -
//	Redis unreachable, FailOpen      next handler      Trypema-Degraded    -
//	Redis unreachable, FailClosed    503               Trypema-Degraded    -
//	any other limiter error          500 (logged)      -                   -
//
// WithDeniedHandler replaces the 429 body and WithErrorHandler the 400, 500
// and 503 answers. Handlers downstream find the decision with DecisionFrom.
//
// # Header fields
//
// The quota header fields follow draft-ietf-httpapi-ratelimit-headers-11
// ("RateLimit header fields for HTTP", 23 May 2026), whose fields are
// Structured Field lists (RFC 9651):
//
//	RateLimit-Policy: "default";q=50;w=10
//	RateLimit: "default";r=42;t=10
//
// q is the key's capacity (the soft cap, for the suppressed strategy) in
// the limiter's units over the window w in seconds. r is the units left
// now. t is the effective window in seconds: for an admitted request the
// window itself (a client that spends no more than r within t seconds is
// never refused on this policy's account); for a refused request the wait
// after which the call can succeed, rounded up to whole seconds and equal
// to Retry-After. A suppressed decision adds the vendor parameter
// trypema-factor, the suppression factor that was applied (a probability of
// denial in [0, 1], with three decimals). WithHeaders(LegacyHeaders) also
// sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
// (seconds from now), and WithHeaders(0) sends no quota headers at all;
// Retry-After is sent on every 429 regardless.
//
// The suppressed strategy has no exact wait: its denials are draws against
// the factor, so a denied request gets Retry-After: 1, the shortest whole
// wait, and the factor says how likely the next try is to fail.
//
// # When Redis is down
//
// A Redis-backed limiter that cannot reach Redis returns an error wrapping
// trypema.ErrRedisUnavailable (its default policy, trypema.FailError). The
// middleware then follows its own FailureMode: FailOpen (the default) serves
// the request without a limit, FailClosed answers 503. Both set the header
// Trypema-Degraded ("fail-open" or "fail-closed") and log a warning at most
// once a second. A limiter built with its own trypema.FailOpen or
// trypema.FailClosed policy answers degraded decisions instead of errors;
// the middleware serves the admitted ones and answers 503 to the others,
// with the same header. Leave DegradedHeader out of WithHeaders to keep
// clients from learning that limits are off.
package httplimit
