package trypema

import (
	"fmt"
	"math"
	"strconv"
)

// Rate is a number of units per second. Build one with [PerSecond],
// [PerMinute], [PerHour], [PerDay], [PerWeek] or [PerMonth], which reject
// values no limiter could use; every limiter checks the rate it is given
// with [ValidateRate] as well, so a Rate made by a plain conversion is
// safe to pass but may be refused.
type Rate float64

// Seconds per unit of each constructor. A month is 30 days.
const (
	secondsPerMinute = 60
	secondsPerHour   = 60 * secondsPerMinute
	secondsPerDay    = 24 * secondsPerHour
	secondsPerWeek   = 7 * secondsPerDay
	secondsPerMonth  = 30 * secondsPerDay
)

// PerSecond returns a rate of v units per second.
func PerSecond(v float64) (Rate, error) { return newRate(v, 1, "second") }

// PerMinute returns a rate of v units per minute.
func PerMinute(v float64) (Rate, error) { return newRate(v, secondsPerMinute, "minute") }

// PerHour returns a rate of v units per hour.
func PerHour(v float64) (Rate, error) { return newRate(v, secondsPerHour, "hour") }

// PerDay returns a rate of v units per day.
func PerDay(v float64) (Rate, error) { return newRate(v, secondsPerDay, "day") }

// PerWeek returns a rate of v units per week.
func PerWeek(v float64) (Rate, error) { return newRate(v, secondsPerWeek, "week") }

// PerMonth returns a rate of v units per month of 30 days.
func PerMonth(v float64) (Rate, error) { return newRate(v, secondsPerMonth, "month") }

// MustPerSecond is like [PerSecond] but panics on an invalid value. It is
// meant for constants in program text, not for values read at run time.
func MustPerSecond(v float64) Rate { return must(PerSecond(v)) }

// MustPerMinute is like [PerMinute] but panics on an invalid value.
func MustPerMinute(v float64) Rate { return must(PerMinute(v)) }

// MustPerHour is like [PerHour] but panics on an invalid value.
func MustPerHour(v float64) Rate { return must(PerHour(v)) }

// MustPerDay is like [PerDay] but panics on an invalid value.
func MustPerDay(v float64) Rate { return must(PerDay(v)) }

// MustPerWeek is like [PerWeek] but panics on an invalid value.
func MustPerWeek(v float64) Rate { return must(PerWeek(v)) }

// MustPerMonth is like [PerMonth] but panics on an invalid value.
func MustPerMonth(v float64) Rate { return must(PerMonth(v)) }

func must(r Rate, err error) Rate {
	if err != nil {
		panic(err)
	}
	return r
}

func newRate(v float64, seconds float64, unit string) (Rate, error) {
	if err := checkRateValue(v, unit); err != nil {
		return 0, err
	}
	r := Rate(v / seconds)
	if err := checkRateValue(float64(r), "second"); err != nil {
		return 0, fmt.Errorf("%w: %s per %s is %s per second, too small to represent; use a larger value or a longer unit",
			ErrInvalidRate, fmtFloat(v), unit, fmtFloat(float64(r)))
	}
	return r, nil
}

// ValidateRate reports whether r is a rate a limiter can use: positive,
// finite and not so small that it underflows to a subnormal double.
func ValidateRate(r Rate) error { return checkRateValue(float64(r), "second") }

func checkRateValue(v float64, unit string) error {
	// One comparison covers the common case; the rest only builds messages.
	if v >= minNormal && v <= math.MaxFloat64 {
		return nil
	}
	switch {
	case math.IsNaN(v):
		return fmt.Errorf("%w: NaN per %s is not a number; pass a positive, finite rate such as trypema.PerSecond(10)", ErrInvalidRate, unit)
	case math.IsInf(v, 0):
		return fmt.Errorf("%w: %s per %s is infinite; pass a positive, finite rate", ErrInvalidRate, fmtFloat(v), unit)
	case v == 0:
		return fmt.Errorf("%w: 0 per %s admits nothing; pass a positive rate (to block a key, use SetIf with a count at or above its capacity)", ErrInvalidRate, unit)
	case v < 0:
		return fmt.Errorf("%w: %s per %s is negative; pass a positive rate", ErrInvalidRate, fmtFloat(v), unit)
	default:
		return fmt.Errorf("%w: %s per %s is too small to represent exactly (below %g); use a larger value or a longer unit",
			ErrInvalidRate, fmtFloat(v), unit, minNormal)
	}
}

// minNormal is the smallest positive normal double; smaller values lose
// precision and are refused.
const minNormal = 0x1p-1022

// String formats the rate as units per second with full precision.
func (r Rate) String() string { return fmtFloat(float64(r)) + "/s" }

// PerSecond returns the rate as units per second.
func (r Rate) PerSecond() float64 { return float64(r) }

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
