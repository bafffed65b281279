package trypema

import (
	"fmt"
	"math"
)

// capacityEpsilon absorbs representation error: 123 per minute over 60 s is
// 122.99999999999999 in doubles and must give 123.
const capacityEpsilon = 1e-9

// Capacity returns the soft cap S (the absolute strategy's capacity C) and
// the hard cap H of rate r over a window of windowMs milliseconds with
// hard-limit factor hf:
//
//	x = (r × windowMs) / 1000
//	S = floor(x + 1e-9)
//	H = floor(x × hf + 1e-9)
//
// in IEEE doubles, in this order, exactly as the Lua scripts compute it.
// Both saturate at 2^53 − 1. A rate too low for the window (S = 0) is
// [ErrZeroCapacity], with a message naming the shortest window that works.
// r, windowMs and hf must already be valid.
func Capacity(r Rate, windowMs int64, hf float64) (soft, hard int64, err error) {
	x := float64(float64(r)*float64(windowMs)) / 1000
	s := saturate(math.Floor(x + capacityEpsilon))
	if s == 0 {
		return 0, 0, zeroCapacity(r, windowMs)
	}
	// The conversion forbids fusing x*hf+ε into one FMA, which would round
	// differently from Lua on some architectures.
	h := saturate(math.Floor(float64(x*hf) + capacityEpsilon))
	return s, max(h, s), nil
}

func saturate(v float64) int64 {
	if v >= MaxCount {
		return MaxCount
	}
	return int64(v)
}

func zeroCapacity(r Rate, windowMs int64) error {
	maxMs := MaxWindow.Milliseconds()
	needF := math.Ceil((1 - capacityEpsilon) * 1000 / float64(r))
	if !(needF <= float64(maxMs)) {
		return fmt.Errorf("%w: rate %v over a window of %s allows %s units, less than one, and even the longest window (400d) is too short; use a higher rate",
			ErrZeroCapacity, r, fmtMillis(windowMs), fmtFloat(float64(r)*float64(windowMs)/1000))
	}
	// The shortest whole-millisecond window whose capacity is 1.
	need := int64(needF)
	for need < maxMs && math.Floor(float64(r)*float64(need)/1000+capacityEpsilon) < 1 {
		need++
	}
	return fmt.Errorf("%w: rate %v over a window of %s allows %s units, less than one; use a window of at least %s (WithWindow) or a higher rate",
		ErrZeroCapacity, r, fmtMillis(windowMs), fmtFloat(float64(r)*float64(windowMs)/1000), fmtMillis(need))
}

func fmtMillis(ms int64) string {
	switch {
	case ms%86_400_000 == 0:
		return fmt.Sprintf("%dd", ms/86_400_000)
	case ms%1000 == 0:
		return fmt.Sprintf("%ds", ms/1000)
	default:
		return fmt.Sprintf("%dms", ms)
	}
}
