package trypema

import (
	"fmt"
	"strings"
)

// MaxKeyLen is the longest key, in bytes.
const MaxKeyLen = 255

// MaxCount is the largest count of one call, 2^53 − 1: every count must be
// exact as a Lua number (an IEEE double).
const MaxCount = 1<<53 - 1

// ValidateKey reports whether key is usable by every provider: non-empty, at
// most 255 bytes, and without ':' (the Redis providers' separator). Keys are
// never changed silently.
func ValidateKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyLen || strings.IndexByte(key, ':') >= 0 {
		return keyError(key)
	}
	return nil
}

func keyError(key string) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: the key is empty; pass a non-empty identifier such as a user id", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: the key is %d bytes long, more than the maximum of %d; hash long identifiers first",
			ErrInvalidKey, len(key), MaxKeyLen)
	default:
		return fmt.Errorf("%w: key %q contains ':', which no provider accepts; replace it (for example with '_')",
			ErrInvalidKey, key)
	}
}

// ValidatePrefix reports whether p can prefix Redis key names: the key rule
// plus at most 64 bytes and none of the characters that Redis gives a
// meaning in key names or SCAN patterns ({ } * ? [ ] \) or whitespace.
func ValidatePrefix(p string) error {
	if len(p) == 0 || len(p) > 64 || strings.ContainsAny(p, ":{}*?[]\\ \t\r\n") {
		return fmt.Errorf("%w: prefix %q must be 1 to 64 bytes without ':', braces, glob characters or whitespace; for example \"myapp_rl\"",
			ErrInvalidPrefix, p)
	}
	return nil
}

// ValidateCount reports whether n is a valid count for one call:
// 1 ≤ n ≤ 2^53 − 1.
func ValidateCount(n int64) error {
	if n >= 1 && n <= MaxCount {
		return nil
	}
	if n == 0 {
		return fmt.Errorf("%w: count 0 consumes nothing; use IsAllowed, SuppressionFactor or Get to ask without consuming", ErrInvalidCount)
	}
	if n < 0 {
		return fmt.Errorf("%w: count %d is negative; counts are at least 1", ErrInvalidCount, n)
	}
	return fmt.Errorf("%w: count %d is above the maximum of 2^53−1 (%d), the largest exact Lua number", ErrInvalidCount, n, int64(MaxCount))
}

// ValidateTarget reports whether n is a valid target total for SetIf:
// 0 ≤ n ≤ 2^53 − 1 (0 deletes the key).
func ValidateTarget(n int64) error {
	if n >= 0 && n <= MaxCount {
		return nil
	}
	if n < 0 {
		return fmt.Errorf("%w: target total %d is negative; use 0 to delete the key", ErrInvalidCount, n)
	}
	return fmt.Errorf("%w: target total %d is above the maximum of 2^53−1 (%d)", ErrInvalidCount, n, int64(MaxCount))
}

// ValidateInc checks the arguments of an Inc call (rate, count, key, in the
// order the scripts check them), so that every provider refuses the same
// input with the same error.
func ValidateInc(key string, r Rate, n int64) error {
	if err := ValidateRate(r); err != nil {
		return err
	}
	if err := ValidateCount(n); err != nil {
		return err
	}
	return ValidateKey(key)
}

// ValidateSetIf checks the arguments of a SetIf call in the scripts' order.
func ValidateSetIf(key string, r Rate, cmp Comparator, n int64, mode HistoryMode) error {
	if err := ValidateRate(r); err != nil {
		return err
	}
	if err := cmp.Validate(); err != nil {
		return err
	}
	if err := ValidateTarget(n); err != nil {
		return err
	}
	if err := mode.Validate(); err != nil {
		return err
	}
	return ValidateKey(key)
}
