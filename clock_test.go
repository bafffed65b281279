package trypema_test

import (
	"sync"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
)

// SystemClock reads only the monotonic clock; it must still agree with the
// wall clock and never run backwards, from any goroutine.
func TestSystemClockTracksWallClockAndIsMonotonic(t *testing.T) {
	clk := trypema.SystemClock()
	for i := 0; i < 5; i++ {
		before := time.Now().UnixMilli()
		got := clk.NowMs()
		after := time.Now().UnixMilli()
		// Anchored at start-up: it may differ from the wall clock only by a
		// wall-clock step since then (none in a test run) and rounding.
		if got < before-1 || got > after+1 {
			t.Fatalf("SystemClock = %d, wall clock between %d and %d", got, before, after)
		}
		time.Sleep(3 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := clk.NowMs()
			for i := 0; i < 100_000; i++ {
				now := clk.NowMs()
				if now < prev {
					t.Errorf("SystemClock went back from %d to %d", prev, now)
					return
				}
				prev = now
			}
		}()
	}
	wg.Wait()
}

func TestManualClock(t *testing.T) {
	var zero trypema.ManualClock
	if zero.NowMs() != 0 {
		t.Fatal("zero ManualClock must read 0")
	}
	c := trypema.NewManualClock(1000)
	c.Advance(1500 * time.Microsecond)
	if c.NowMs() != 1001 {
		t.Fatalf("Advance(1.5ms) from 1000 = %d, want 1001", c.NowMs())
	}
	c.Set(5)
	if c.NowMs() != 5 {
		t.Fatalf("Set(5) = %d", c.NowMs())
	}
}

var sinkMs int64

// BenchmarkClock compares the system clock with time.Now, the cost it avoids.
func BenchmarkClock(b *testing.B) {
	b.Run("SystemClock", func(b *testing.B) {
		clk := trypema.SystemClock()
		for b.Loop() {
			sinkMs += clk.NowMs()
		}
	})
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			sinkMs += time.Now().UnixMilli()
		}
	})
}
