// Package sliding is the Go home of the algorithm: one key's buckets on a
// sliding window and the absolute and suppressed decisions over them,
// written to compute exactly what the Lua scripts in lua/v1 compute (same
// operations, same order of floating-point arithmetic). The local and hybrid
// providers wrap a State in their own locking; State itself is not safe for
// concurrent use and does no I/O.
//
// Times are integer milliseconds supplied by the caller. Every operation
// first applies the monotonic guard (a clock reading earlier than the newest
// call is taken as that call's time) and drops buckets whose newest call has
// left the window.
package sliding

import (
	"fmt"
	"math"
	"time"

	"github.com/trypema-go/trypema"
)

// Params is the per-limiter configuration in the units the algorithm uses.
type Params struct {
	WindowMs        int64
	BucketMs        int64
	HardLimitFactor float64
	FactorCacheMs   int64
	// Suppressed selects the suppressed strategy's caps (soft and hard);
	// the absolute strategy uses hf = 1.
	Suppressed bool
}

// ParamsOf converts a validated Config.
func ParamsOf(c trypema.Config, suppressed bool) Params {
	return Params{
		WindowMs:        c.WindowMs(),
		BucketMs:        c.BucketMs(),
		HardLimitFactor: c.HardLimitFactor,
		FactorCacheMs:   c.FactorCacheMs(),
		Suppressed:      suppressed,
	}
}

// Caps returns the soft and hard caps of rate r under p.
func (p *Params) Caps(r trypema.Rate) (soft, hard int64, err error) {
	hf := 1.0
	if p.Suppressed {
		hf = p.HardLimitFactor
	}
	return trypema.Capacity(r, p.WindowMs, hf)
}

// Bucket is a run of coalesced calls.
type Bucket struct {
	Start    int64 // time of the first call
	Last     int64 // time of the newest call
	Count    int64 // units recorded (suppressed: observed, declined included)
	Declined int64 // units denied by suppression
}

// recentMs is the look-back of the suppression factor's short-term rate.
const recentMs = 1000

// State is one key's live state. The zero value is an unknown key.
type State struct {
	Rate       trypema.Rate
	Soft, Hard int64
	Total      int64 // sum of live bucket counts
	Declined   int64 // sum of live bucket declines

	buf  []Bucket // ring; len is zero or a power of two
	head int
	size int

	// The cached suppression factor, valid for FactorCacheMs after factorAt
	// while the oldest live bucket is still the one that started at
	// factorHead: an expiry invalidates it without any write, so read-only
	// Lua scripts judge the cache exactly as this code does.
	factor     float64
	factorAt   int64
	factorHead int64
	factorOK   bool
}

// Len returns the number of live buckets (as of the last operation).
func (s *State) Len() int { return s.size }

// Bucket returns the i-th live bucket, oldest first.
func (s *State) Bucket(i int) Bucket { return s.buf[(s.head+i)&(len(s.buf)-1)] }

func (s *State) at(i int) *Bucket { return &s.buf[(s.head+i)&(len(s.buf)-1)] }

func (s *State) oldest() *Bucket { return s.at(0) }
func (s *State) newest() *Bucket { return s.at(s.size - 1) }

// Exists reports whether the key has live state.
func (s *State) Exists() bool { return s.size > 0 }

// Idle reports whether nothing of the key is live at now, so that a
// sweeper may drop it.
func (s *State) Idle(p *Params, now int64) bool {
	return s.size == 0 || now-s.newest().Last >= p.WindowMs
}

// Advance applies the monotonic guard and expires buckets; it returns the
// time the operation runs at. Every operation calls it first. An operation
// that ends up recording nothing undoes the expiry (see mark): the Lua
// scripts write nothing then, so a later call with a clock stepped back
// must still see those buckets, here as there.
func (s *State) Advance(p *Params, now int64) int64 {
	if s.size == 0 {
		return now
	}
	if last := s.newest().Last; now < last {
		now = last
	}
	for s.size > 0 {
		b := s.oldest()
		if now-b.Last < p.WindowMs {
			break
		}
		s.Total -= b.Count
		s.Declined -= b.Declined
		s.head = (s.head + 1) & (len(s.buf) - 1)
		s.size--
	}
	return now
}

// mark is the part of a State that Advance changes. Expiry only moves the
// ring's head, so restoring these fields brings the buckets back exactly.
type mark struct {
	head, size      int
	total, declined int64
}

func (s *State) mark() mark { return mark{s.head, s.size, s.Total, s.Declined} }

// undo restores the state of m: the operation recorded nothing.
func (s *State) undo(m mark) {
	s.head, s.size, s.Total, s.Declined = m.head, m.size, m.total, m.declined
}

// Reset forgets the key, keeping the ring's memory for reuse.
func (s *State) Reset() { *s = State{buf: s.buf} }

func (s *State) push(b Bucket) {
	if s.size == len(s.buf) {
		s.grow()
	}
	*s.at(s.size) = b
	s.size++
}

func (s *State) grow() {
	n := max(4, 2*len(s.buf))
	buf := make([]Bucket, n)
	for i := 0; i < s.size; i++ {
		buf[i] = *s.at(i)
	}
	s.buf, s.head = buf, 0
}

// record adds n units (d of them declined) at now, joining the newest
// bucket when now is less than B after its start.
func (s *State) record(p *Params, now, n, d int64) {
	if s.size > 0 {
		if b := s.newest(); now-b.Start < p.BucketMs {
			b.Count += n
			b.Declined += d
			b.Last = now
			s.Total += n
			s.Declined += d
			return
		}
	}
	s.push(Bucket{Start: now, Last: now, Count: n, Declined: d})
	s.Total += n
	s.Declined += d
}

// adopt makes a fresh key take rate r; it reports the caps without storing
// anything when r's capacity is zero or below n.
func (s *State) adopt(p *Params, r trypema.Rate, n int64) error {
	soft, hard, err := p.Caps(r)
	if err != nil {
		return err
	}
	if n > hard {
		return countExceeds(n, hard, r, p)
	}
	s.Rate, s.Soft, s.Hard = r, soft, hard
	s.factorOK = false
	return nil
}

// begin starts an Inc: the guard and expiry, then the check that n can ever
// be admitted, against the caps of r for a key without state (which adopts
// r) or against the key's own hard cap (equal to its capacity for the
// absolute strategy). On error the state is left as it was.
func (s *State) begin(p *Params, now int64, r trypema.Rate, n int64) (int64, mark, error) {
	m := s.mark()
	now = s.Advance(p, now)
	var err error
	if s.size == 0 {
		err = s.adopt(p, r, n)
	} else if n > s.Hard {
		err = countExceeds(n, s.Hard, s.Rate, p)
	}
	if err != nil {
		s.undo(m)
	}
	return now, m, err
}

// IncAbsolute is the absolute strategy's Inc (SPEC §4.1).
func (s *State) IncAbsolute(p *Params, now int64, r trypema.Rate, n int64) (trypema.Decision, error) {
	now, m, err := s.begin(p, now, r, n)
	if err != nil {
		return trypema.Decision{}, err
	}
	c := s.Soft
	if s.Total+n <= c {
		s.record(p, now, n, 0)
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: c, Remaining: c - s.Total}, nil
	}
	d := s.rejection(p, now, n)
	s.undo(m)
	return d, nil
}

// rejection builds the Rejected decision for n units with the exact wait.
func (s *State) rejection(p *Params, now, n int64) trypema.Decision {
	c := s.Soft
	freed := int64(0)
	var retry int64
	for i := 0; i < s.size; i++ {
		b := s.at(i)
		freed += b.Count
		if s.Total-freed+n <= c {
			retry = p.WindowMs - (now - b.Last)
			break
		}
	}
	return trypema.Decision{
		Outcome:               trypema.Rejected,
		Limit:                 c,
		Remaining:             max(0, c-s.Total),
		RetryAfter:            msToDuration(retry),
		RemainingAfterWaiting: c - (s.Total - freed),
	}
}

// IsAllowed is the absolute strategy's read-only question for one unit.
func (s *State) IsAllowed(p *Params, now int64) trypema.Decision {
	defer s.undo(s.mark())
	now = s.Advance(p, now)
	if s.size == 0 {
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true}
	}
	if s.Total < s.Soft {
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: s.Soft, Remaining: s.Soft - s.Total}
	}
	return s.rejection(p, now, 1)
}

// IncSuppressed is the suppressed strategy's Inc; draw returns the uniform
// draw in [0, 1), called only when the decision is probabilistic. With forecast = A + n:
//
//   - forecast > H: Suppressed with factor 1, not admitted;
//   - factor 0 and forecast ≤ S: Allowed;
//   - otherwise: Suppressed with factor f, admitted iff u < 1 − f.
//
// This refines SPEC §4.2, which allows every call with forecast ≤ S: there,
// once the first window's burst expires, accepted usage drops below S and
// the key re-admits everything at the offered rate, so the burst echoes in
// every later window (measured: +30 % in the second window at 5× load).
// Here a key whose observed demand in the window reached S keeps drawing
// while its demand in the last second is above the rate (see
// computeFactor), so the admitted rate stays at the target.
func (s *State) IncSuppressed(p *Params, now int64, r trypema.Rate, n int64, draw func() float64) (trypema.Decision, error) {
	now, _, err := s.begin(p, now, r, n)
	if err != nil {
		return trypema.Decision{}, err
	}
	forecast := s.Total - s.Declined + n
	if forecast > s.Hard {
		s.record(p, now, n, n)
		return trypema.Decision{Outcome: trypema.Suppressed, Limit: s.Soft, SuppressionFactor: 1}, nil
	}
	f := s.currentFactor(p, now, true)
	if f == 0 && forecast <= s.Soft {
		s.record(p, now, n, 0)
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: s.Soft, Remaining: s.Soft - forecast}, nil
	}
	admitted := draw() < 1-f
	d := n
	if admitted {
		d = 0
	}
	s.record(p, now, n, d)
	return trypema.Decision{Outcome: trypema.Suppressed, Admitted: admitted, Limit: s.Soft, SuppressionFactor: f}, nil
}

// Factor is the read-only suppression factor at now.
func (s *State) Factor(p *Params, now int64) float64 {
	defer s.undo(s.mark())
	return s.currentFactor(p, now, false)
}

// currentFactor returns the factor: the bounds first (they are exact and
// cheap), then the cached rate-based value while it is fresh, else a new
// one, stored in the cache when store is set.
func (s *State) currentFactor(p *Params, now int64, store bool) float64 {
	now = s.Advance(p, now)
	accepted := s.Total - s.Declined
	switch {
	case s.size == 0 || s.Total < s.Soft:
		return 0
	case accepted >= s.Hard:
		return 1
	case s.factorOK && now-s.factorAt < p.FactorCacheMs && s.oldest().Start == s.factorHead:
		return s.factor
	}
	f := s.computeFactor(p, now)
	if store {
		s.factor, s.factorAt, s.factorHead, s.factorOK = f, now, s.oldest().Start, true
	}
	return f
}

// computeFactor is the rate-based part of the suppression factor, in the
// Lua scripts' order of operations. In full, the factor is:
//
//   - 0 for an unknown key or observed demand below S (Total < S);
//   - 1 when accepted usage A ≥ H;
//   - otherwise clamp(1 − (S / W_s) / perceived, 0, 1), where perceived is
//     the units observed in buckets whose last call is under 1 s old, per
//     second of the span since the first of them began (at least 1 s), or,
//     once A ≥ S, the larger of that and Total / W_s (SPEC §4.2).
//
// Below S only the last second counts, so a key whose overload has ended
// admits freely again at once instead of paying for a window of old
// declines.
func (s *State) computeFactor(p *Params, now int64) float64 {
	accepted := s.Total - s.Declined
	ws := float64(p.WindowMs) / 1000
	// The counted buckets' calls began at the oldest one's start, up to B
	// before the look-back: the rate is taken over that span (at least
	// 1 s), else coarse buckets overstate demand and under-admit.
	var recent int64
	span := int64(recentMs)
	for i := s.size - 1; i >= 0; i-- {
		b := s.at(i)
		if now-b.Last >= recentMs {
			break
		}
		recent += b.Count
		span = max(span, now-b.Start)
	}
	perceived := float64(recent) * 1000 / float64(span)
	if accepted >= s.Soft {
		perceived = max(perceived, float64(s.Total)/ws)
	}
	if perceived <= 0 {
		return 0
	}
	f := 1 - float64(float64(s.Soft)/ws)/perceived
	return min(max(f, 0), 1)
}

// Snapshot is Get: the live state, read-only.
func (s *State) Snapshot(p *Params, now int64) trypema.Snapshot {
	defer s.undo(s.mark())
	now = s.Advance(p, now)
	if s.size == 0 {
		return trypema.Snapshot{}
	}
	snap := trypema.Snapshot{Exists: true, Total: s.Total, Declined: s.Declined, Limit: s.Soft, HardLimit: s.Hard, Rate: s.Rate}
	if p.Suppressed {
		snap.SuppressionFactor = s.currentFactor(p, now, false)
	}
	return snap
}

// SetRateLimit replaces the rate of a live key, keeping its history.
func (s *State) SetRateLimit(p *Params, now int64, r trypema.Rate) (trypema.Rate, bool, error) {
	m := s.mark()
	s.Advance(p, now)
	if s.size == 0 {
		s.undo(m)
		return 0, false, nil
	}
	soft, hard, err := p.Caps(r)
	if err != nil || r == s.Rate { // nothing to write
		s.undo(m)
		if err != nil {
			return 0, false, err
		}
		return r, true, nil
	}
	prev := s.Rate
	s.Rate, s.Soft, s.Hard = r, soft, hard
	s.factorOK = false
	return prev, true, nil
}

// Usage is what Delete reports: absolute total, suppressed accepted units.
func (s *State) Usage(p *Params) int64 {
	if p.Suppressed {
		return s.Total - s.Declined
	}
	return s.Total
}

// Delete forgets the key and returns its usage before deletion.
func (s *State) Delete(p *Params, now int64) (int64, bool) {
	s.Advance(p, now)
	if s.size == 0 {
		return 0, false
	}
	u := s.Usage(p)
	s.Reset()
	return u, true
}

// SetIf is the conditional set of SPEC §5. Arguments must be validated
// except the rate's capacity, which it checks before writing anything.
func (s *State) SetIf(p *Params, now int64, r trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	soft, hard, err := p.Caps(r)
	if err != nil {
		return trypema.SetResult{}, err
	}
	m := s.mark()
	now = s.Advance(p, now)
	cur := s.Total
	if !cmp.Match(cur, n) {
		s.undo(m)
		return trypema.SetResult{Previous: cur, Current: cur}, nil
	}
	if n == 0 {
		s.Reset()
		return trypema.SetResult{Matched: true, Previous: cur}, nil
	}
	switch {
	case mode == trypema.Replace || s.size == 0:
		s.Reset()
		s.push(Bucket{Start: now, Last: now, Count: n})
		s.Total = n
	case n > cur && mode == trypema.PreserveNewest:
		s.newest().Count += n - cur
		s.Total = n
	case n > cur: // PreserveOldest
		s.oldest().Count += n - cur
		s.Total = n
	case n < cur:
		s.remove(cur-n, mode == trypema.PreserveNewest)
	}
	s.Rate, s.Soft, s.Hard = r, soft, hard
	s.factorOK = false
	return trypema.SetResult{Matched: true, Previous: cur, Current: s.Total}, nil
}

// remove takes k units away, from the oldest buckets first when fromOldest
// and from the newest otherwise. A thinned bucket keeps
// floor(declined × kept / count) of its declines.
func (s *State) remove(k int64, fromOldest bool) {
	for k > 0 && s.size > 0 {
		var b *Bucket
		if fromOldest {
			b = s.oldest()
		} else {
			b = s.newest()
		}
		take := min(k, b.Count)
		kept := b.Count - take
		declined := int64(0)
		if kept > 0 {
			declined = int64(math.Floor(float64(float64(b.Declined)*float64(kept)) / float64(b.Count)))
			declined = min(max(declined, 0), kept)
		}
		s.Total -= take
		s.Declined -= b.Declined - declined
		b.Count, b.Declined = kept, declined
		k -= take
		if kept == 0 {
			if fromOldest {
				s.head = (s.head + 1) & (len(s.buf) - 1)
			}
			s.size--
		}
	}
}

func msToDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

func countExceeds(n, limit int64, r trypema.Rate, p *Params) error {
	return fmt.Errorf("%w: a call of %d units can never be admitted by a key whose limit is %d (rate %v over %v); split the call or raise the rate",
		trypema.ErrCountExceedsCapacity, n, limit, r, msToDuration(p.WindowMs))
}
