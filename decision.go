package trypema

import (
	"fmt"
	"time"
)

// Outcome is the kind of a [Decision].
type Outcome uint8

const (
	// Allowed: the call was admitted (absolute), or was under the soft
	// cap (suppressed).
	Allowed Outcome = iota + 1
	// Rejected: the absolute strategy refused the call; nothing was
	// recorded. RetryAfter says when expiries alone make room.
	Rejected
	// Suppressed: the suppressed strategy was above its soft cap and drew
	// against the suppression factor; Admitted says which way it went.
	Suppressed
)

func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Rejected:
		return "rejected"
	case Suppressed:
		return "suppressed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Decision is the answer of Inc and IsAllowed, the same type for every
// limiter.
type Decision struct {
	// Outcome is Allowed, Rejected (absolute only) or Suppressed
	// (suppressed only).
	Outcome Outcome
	// Admitted reports whether the caller may proceed.
	Admitted bool
	// Limit is the key's capacity C (absolute) or soft cap S (suppressed);
	// 0 for a key without state.
	Limit int64
	// Remaining is how many more units fit right now: C minus the live
	// units (after this call's units, for Inc).
	Remaining int64
	// RetryAfter (Rejected) is the exact shortest wait after which
	// expiries alone make room for the same call.
	RetryAfter time.Duration
	// RemainingAfterWaiting (Rejected) is the room after RetryAfter,
	// at least the call's count.
	RemainingAfterWaiting int64
	// SuppressionFactor (Suppressed) is the probability of denial that
	// was applied, in [0, 1].
	SuppressionFactor float64
	// Degraded reports that the decision came from the failure policy
	// (Redis unreachable), not from limiter state.
	Degraded bool
}

// Snapshot is a key's state as returned by Get. An unknown key gives the
// zero Snapshot, and nothing is created.
type Snapshot struct {
	// Exists reports whether the key has live usage.
	Exists bool
	// Total is the live units observed: admitted units (absolute), or all
	// recorded units including declined ones (suppressed).
	Total int64
	// Declined is the live units denied by suppression (suppressed only).
	Declined int64
	// Limit is the capacity C (absolute) or the soft cap S (suppressed).
	Limit int64
	// HardLimit is the suppressed hard cap H; equal to Limit for absolute.
	HardLimit int64
	// Rate is the key's stored (sticky) rate.
	Rate Rate
	// SuppressionFactor is the current factor (suppressed only).
	SuppressionFactor float64
}

// Accepted returns the live accepted usage, Total − Declined.
func (s Snapshot) Accepted() int64 { return s.Total - s.Declined }

// SetResult is the answer of SetIf.
type SetResult struct {
	// Matched reports whether the comparator matched and the write was made.
	Matched bool
	// Previous is the live total before the call.
	Previous int64
	// Current is the live total after the call.
	Current int64
}

// Comparator compares a key's live total with SetIf's target.
type Comparator uint8

const (
	Always Comparator = iota // always matches
	Eq                       // total == n
	Ne                       // total != n
	Lt                       // total < n
	Le                       // total <= n
	Gt                       // total > n
	Ge                       // total >= n
)

var comparatorNames = [...]string{"always", "eq", "ne", "lt", "le", "gt", "ge"}

func (c Comparator) String() string {
	if int(c) < len(comparatorNames) {
		return comparatorNames[c]
	}
	return fmt.Sprintf("Comparator(%d)", uint8(c))
}

// Match reports whether total c n holds.
func (c Comparator) Match(total, n int64) bool {
	switch c {
	case Always:
		return true
	case Eq:
		return total == n
	case Ne:
		return total != n
	case Lt:
		return total < n
	case Le:
		return total <= n
	case Gt:
		return total > n
	case Ge:
		return total >= n
	}
	return false
}

// Validate reports whether c is a known comparator.
func (c Comparator) Validate() error {
	if c <= Ge {
		return nil
	}
	return fmt.Errorf("%w: unknown comparator %d; use Always, Eq, Ne, Lt, Le, Gt or Ge", ErrInvalidArg, uint8(c))
}

// HistoryMode says how SetIf reshapes a key's buckets.
type HistoryMode uint8

const (
	// Replace drops the history and keeps one fresh bucket holding n.
	Replace HistoryMode = iota
	// PreserveNewest raises by adding to the newest bucket and lowers by
	// removing units from the oldest buckets first.
	PreserveNewest
	// PreserveOldest raises by adding to the oldest bucket and lowers by
	// removing units from the newest buckets first.
	PreserveOldest
)

var historyModeNames = [...]string{"replace", "preserve_newest", "preserve_oldest"}

func (m HistoryMode) String() string {
	if int(m) < len(historyModeNames) {
		return historyModeNames[m]
	}
	return fmt.Sprintf("HistoryMode(%d)", uint8(m))
}

// Validate reports whether m is a known history mode.
func (m HistoryMode) Validate() error {
	if m <= PreserveOldest {
		return nil
	}
	return fmt.Errorf("%w: unknown history mode %d; use Replace, PreserveNewest or PreserveOldest", ErrInvalidArg, uint8(m))
}

// FailurePolicy is what a Redis-backed limiter answers when Redis fails.
type FailurePolicy uint8

const (
	// FailError returns the error (wrapping ErrRedisUnavailable).
	FailError FailurePolicy = iota
	// FailOpen admits the call; the Decision has Degraded set.
	FailOpen
	// FailClosed rejects the call; the Decision has Degraded set.
	FailClosed
)

func (p FailurePolicy) String() string {
	switch p {
	case FailError:
		return "error"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailurePolicy(%d)", uint8(p))
}
