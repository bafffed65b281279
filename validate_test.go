package trypema_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

// wantErr checks that err wraps kind and that its message contains every
// fragment, so each error says what was wrong and how to fix it.
func wantErr(t *testing.T, err, kind error, fragments ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want one wrapping %v", err, kind)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

func TestRateValidation(t *testing.T) {
	cases := []struct {
		name      string
		v         float64
		fragments []string
	}{
		{"zero", 0, []string{"0 per second", "positive"}},
		{"negative", -1, []string{"-1 per second", "negative"}},
		{"NaN", math.NaN(), []string{"NaN", "not a number"}},
		{"+Inf", math.Inf(1), []string{"+Inf", "infinite"}},
		{"-Inf", math.Inf(-1), []string{"-Inf", "infinite"}},
		{"subnormal", 1e-320, []string{"1e-320", "too small"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := trypema.PerSecond(c.v)
			if r != 0 {
				t.Errorf("rate = %v, want 0 with the error", r)
			}
			wantErr(t, err, trypema.ErrInvalidRate, c.fragments...)
			wantErr(t, trypema.ValidateRate(trypema.Rate(c.v)), trypema.ErrInvalidRate)
		})
	}
	// A value valid per month can still underflow once converted.
	_, err := trypema.PerMonth(1e-303)
	wantErr(t, err, trypema.ErrInvalidRate, "per month", "too small")
}

func TestRateConstructors(t *testing.T) {
	cases := []struct {
		got  func(float64) (trypema.Rate, error)
		must func(float64) trypema.Rate
		per  float64 // seconds per unit
	}{
		{trypema.PerSecond, trypema.MustPerSecond, 1},
		{trypema.PerMinute, trypema.MustPerMinute, 60},
		{trypema.PerHour, trypema.MustPerHour, 3600},
		{trypema.PerDay, trypema.MustPerDay, 86400},
		{trypema.PerWeek, trypema.MustPerWeek, 7 * 86400},
		{trypema.PerMonth, trypema.MustPerMonth, 30 * 86400},
	}
	for _, c := range cases {
		r, err := c.got(123)
		if err != nil {
			t.Fatal(err)
		}
		if want := trypema.Rate(123 / c.per); r != want || c.must(123) != want {
			t.Errorf("rate for 123 per %v s = %v, want %v", c.per, r, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustPerSecond(-1) did not panic")
		}
	}()
	trypema.MustPerSecond(-1)
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name      string
		opts      []trypema.Option
		kind      error
		fragments []string
	}{
		{"window 0", []trypema.Option{trypema.WithWindow(0)}, trypema.ErrInvalidWindow, []string{"window 0s", "minimum of 1ms"}},
		{"window 0.5ms", []trypema.Option{trypema.WithWindow(500 * time.Microsecond)}, trypema.ErrInvalidWindow, []string{"500µs", "whole number of milliseconds"}},
		{"window 401 days", []trypema.Option{trypema.WithWindow(401 * 24 * time.Hour)}, trypema.ErrInvalidWindow, []string{"9624h0m0s", "400 days"}},
		{"bucket larger than window", []trypema.Option{trypema.WithWindow(time.Second), trypema.WithBucketSize(2 * time.Second)}, trypema.ErrInvalidBucket, []string{"bucket size 2s", "larger than the window 1s"}},
		{"bucket 0", []trypema.Option{trypema.WithBucketSize(0)}, trypema.ErrInvalidBucket, []string{"bucket size 0s", "minimum"}},
		{"factor 0.99", []trypema.Option{trypema.WithHardLimitFactor(0.99)}, trypema.ErrInvalidFactor, []string{"0.99", "≥ 1"}},
		{"factor NaN", []trypema.Option{trypema.WithHardLimitFactor(math.NaN())}, trypema.ErrInvalidFactor, []string{"NaN", "finite"}},
		{"factor +Inf", []trypema.Option{trypema.WithHardLimitFactor(math.Inf(1))}, trypema.ErrInvalidFactor, []string{"+Inf"}},
		{"cache 0", []trypema.Option{trypema.WithFactorCacheTTL(0)}, trypema.ErrInvalidOption, []string{"cache TTL 0s"}},
		{"sync 0.5ms", []trypema.Option{trypema.WithSyncInterval(500 * time.Microsecond)}, trypema.ErrInvalidOption, []string{"sync interval", "whole number"}},
		{"sweep negative", []trypema.Option{trypema.WithSweepInterval(-time.Second)}, trypema.ErrInvalidOption, []string{"sweep interval -1s"}},
		{"prefix with colon", []trypema.Option{trypema.WithPrefix("a:b")}, trypema.ErrInvalidPrefix, []string{`"a:b"`}},
		{"prefix with brace", []trypema.Option{trypema.WithPrefix("a{b}")}, trypema.ErrInvalidPrefix, []string{"braces"}},
		{"unknown failure policy", []trypema.Option{trypema.WithFailurePolicy(9)}, trypema.ErrInvalidOption, []string{"failure policy 9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := trypema.NewConfig(c.opts...)
			wantErr(t, err, c.kind, c.fragments...)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := trypema.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Window != 10*time.Second || c.BucketSize != 100*time.Millisecond || c.HardLimitFactor != 1 ||
		c.FactorCacheTTL != 100*time.Millisecond || c.SyncInterval != 10*time.Millisecond ||
		c.SweepInterval != 10*time.Second || c.Prefix != "trypema" || c.FailurePolicy != trypema.FailError || c.Clock != nil {
		t.Errorf("defaults = %+v", c)
	}
	c, err = trypema.NewConfig(trypema.WithWindow(400*24*time.Hour), trypema.WithBucketSize(400*24*time.Hour))
	if err != nil {
		t.Fatalf("400 days with a bucket equal to the window must be valid: %v", err)
	}
	if c.SweepInterval != time.Minute {
		t.Errorf("sweep interval = %v, want the window clamped to 1m", c.SweepInterval)
	}
}

func TestKeyValidation(t *testing.T) {
	wantErr(t, trypema.ValidateKey(""), trypema.ErrInvalidKey, "empty")
	wantErr(t, trypema.ValidateKey(strings.Repeat("k", 256)), trypema.ErrInvalidKey, "256 bytes", "maximum of 255")
	wantErr(t, trypema.ValidateKey("a:b"), trypema.ErrInvalidKey, `"a:b"`, "':'", "replace")
	for _, ok := range []string{"k", strings.Repeat("k", 255), "user_123", "ip_10.0.0.1", "{tag}", "ünïcode"} {
		if err := trypema.ValidateKey(ok); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", ok, err)
		}
	}
}

func TestCountValidation(t *testing.T) {
	wantErr(t, trypema.ValidateCount(0), trypema.ErrInvalidCount, "count 0", "IsAllowed")
	wantErr(t, trypema.ValidateCount(-3), trypema.ErrInvalidCount, "-3", "negative")
	wantErr(t, trypema.ValidateCount(1<<53), trypema.ErrInvalidCount, "9007199254740992", "2^53−1")
	for _, ok := range []int64{1, 1<<53 - 1} {
		if err := trypema.ValidateCount(ok); err != nil {
			t.Errorf("ValidateCount(%d) = %v", ok, err)
		}
	}
	if err := trypema.ValidateTarget(0); err != nil {
		t.Errorf("ValidateTarget(0) = %v, want nil (0 deletes)", err)
	}
	wantErr(t, trypema.ValidateTarget(-1), trypema.ErrInvalidCount, "negative")
	wantErr(t, trypema.ValidateTarget(1<<53), trypema.ErrInvalidCount, "maximum")
}

func TestComparatorsAndModes(t *testing.T) {
	type row struct {
		cmp              trypema.Comparator
		less, eq, larger bool // total < n, total == n, total > n
	}
	for _, r := range []row{
		{trypema.Always, true, true, true},
		{trypema.Eq, false, true, false},
		{trypema.Ne, true, false, true},
		{trypema.Lt, true, false, false},
		{trypema.Le, true, true, false},
		{trypema.Gt, false, false, true},
		{trypema.Ge, false, true, true},
	} {
		if got := [3]bool{r.cmp.Match(1, 2), r.cmp.Match(2, 2), r.cmp.Match(3, 2)}; got != [3]bool{r.less, r.eq, r.larger} {
			t.Errorf("%v: matches %v, want %v", r.cmp, got, [3]bool{r.less, r.eq, r.larger})
		}
		if err := r.cmp.Validate(); err != nil {
			t.Errorf("%v.Validate() = %v", r.cmp, err)
		}
	}
	wantErr(t, trypema.Comparator(7).Validate(), trypema.ErrInvalidArg, "comparator 7")
	wantErr(t, trypema.HistoryMode(3).Validate(), trypema.ErrInvalidArg, "history mode 3")
	if trypema.PreserveOldest.String() != "preserve_oldest" || trypema.Ge.String() != "ge" || trypema.Suppressed.String() != "suppressed" {
		t.Error("names of comparators, modes or outcomes changed")
	}
}
