package trypema

import "errors"

// Error values. Every error a limiter returns wraps one of these, so callers
// test with [errors.Is]; the message says what was wrong and how to fix it.
var (
	ErrInvalidRate   = errors.New("trypema: invalid rate")
	ErrInvalidWindow = errors.New("trypema: invalid window")
	ErrInvalidBucket = errors.New("trypema: invalid bucket size")
	ErrInvalidFactor = errors.New("trypema: invalid hard-limit factor")
	ErrInvalidOption = errors.New("trypema: invalid option")
	ErrInvalidKey    = errors.New("trypema: invalid key")
	ErrInvalidPrefix = errors.New("trypema: invalid prefix")
	ErrInvalidCount  = errors.New("trypema: invalid count")
	ErrInvalidArg    = errors.New("trypema: invalid argument")

	// ErrZeroCapacity: the rate is too low for the window to admit even
	// one unit. Nothing was recorded.
	ErrZeroCapacity = errors.New("trypema: zero capacity")
	// ErrCountExceedsCapacity: a call of n units can never succeed
	// because n is larger than the capacity. Nothing was recorded.
	ErrCountExceedsCapacity = errors.New("trypema: count exceeds capacity")
	// ErrUnexpectedReply: a script answered with a reply of the wrong
	// shape; the message names the script.
	ErrUnexpectedReply = errors.New("trypema: unexpected script reply")
	// ErrRedisUnavailable wraps a failure to reach Redis; the cause
	// (including context.Canceled and context.DeadlineExceeded) stays
	// visible to errors.Is.
	ErrRedisUnavailable = errors.New("trypema: redis unavailable")
	// ErrClosed: the limiter was closed.
	ErrClosed = errors.New("trypema: limiter closed")
)
