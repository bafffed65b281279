package httplimit

import (
	"math"
	"strconv"
	"strings"
)

// Serialisation of the few Structured Field values (RFC 9651) the header
// fields use.

// sfMaxInt is the largest Integer a Structured Field may carry (15 digits).
const sfMaxInt = 999_999_999_999_999

// sfInt clamps v to the Integer range; capacities can reach 2^53 − 1.
func sfInt(v int64) int64 { return min(max(v, -sfMaxInt), sfMaxInt) }

// sfString serialises s, printable ASCII, as a String.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// sfDecimal serialises v in [0, 1] as a Decimal: rounded to three
// fractional digits, trailing zeros dropped, at least one kept.
func sfDecimal(v float64) string {
	if math.IsNaN(v) {
		v = 0
	}
	v = math.Round(min(max(v, 0), 1)*1000) / 1000
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}
