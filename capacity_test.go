package trypema_test

import (
	"errors"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

func TestCapacityVectors(t *testing.T) {
	cases := []struct {
		name       string
		rate       trypema.Rate
		window     time.Duration
		hf         float64
		soft, hard int64
	}{
		{"123/min over 60s", trypema.MustPerMinute(123), time.Minute, 1, 123, 123},
		{"115/h over 1h", trypema.MustPerHour(115), time.Hour, 1, 115, 115},
		{"11/day over 1 day", trypema.MustPerDay(11), 24 * time.Hour, 1, 11, 11},
		{"2.9/s over 1s", trypema.MustPerSecond(2.9), time.Second, 1, 2, 2},
		{"15/s hf 1.1 over 1s", trypema.MustPerSecond(15), time.Second, 1.1, 15, 16},
		{"7/week over 1 week", trypema.MustPerWeek(7), 7 * 24 * time.Hour, 1, 7, 7},
		{"30/month over 30 days", trypema.MustPerMonth(30), 30 * 24 * time.Hour, 1, 30, 30},
		{"0.1/s over 10s", trypema.MustPerSecond(0.1), 10 * time.Second, 1, 1, 1},
		{"10/s over 1ms", trypema.MustPerSecond(1000), time.Millisecond, 1.5, 1, 1},
		{"saturates at 2^53-1", trypema.MustPerSecond(1e300), time.Second, 2, 1<<53 - 1, 1<<53 - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, h, err := trypema.Capacity(c.rate, c.window.Milliseconds(), c.hf)
			if err != nil {
				t.Fatal(err)
			}
			if s != c.soft || h != c.hard {
				t.Errorf("Capacity = (%d, %d), want (%d, %d)", s, h, c.soft, c.hard)
			}
		})
	}
}

func TestZeroCapacity(t *testing.T) {
	s, h, err := trypema.Capacity(trypema.MustPerSecond(0.05), 10_000, 1)
	if s != 0 || h != 0 {
		t.Errorf("caps = (%d, %d), want zeros with the error", s, h)
	}
	// 0.05/s needs 20 s for one unit.
	wantErr(t, err, trypema.ErrZeroCapacity, "0.05/s", "10s", "0.5 units", "at least 20s")
	_, _, err = trypema.Capacity(trypema.MustPerSecond(1e-12), 1000, 1)
	wantErr(t, err, trypema.ErrZeroCapacity, "longest window", "higher rate")
	if errors.Is(err, trypema.ErrInvalidRate) {
		t.Error("zero capacity must not be reported as an invalid rate")
	}
}
