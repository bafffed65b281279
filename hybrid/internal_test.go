package hybrid

import (
	"context"
	"testing"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/redistest"
)

// TestSweepForgetsIdleKeys: local state follows the live keys.
func TestSweepForgetsIdleKeys(t *testing.T) {
	srv := redistest.Start(t)
	clk := trypema.NewManualClock(1_000_000)
	l, err := NewAbsolute(srv.Pool(), []trypema.Option{trypema.WithWindow(time.Second), trypema.WithClock(clk),
		trypema.WithSyncInterval(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	rate := trypema.MustPerSecond(100)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := l.Inc(ctx, k, rate, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.flushAll(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(500 * time.Millisecond)
	l.Inc(ctx, "c", rate, 1)
	l.flushAll(ctx)
	clk.Advance(600 * time.Millisecond) // a and b idle for 1.1 s, c for 0.6 s
	l.sweep()
	if got := l.keys.Keys(); len(got) != 1 || got[0] != "c" {
		t.Fatalf("after the sweep the keys held are %v, want [c]", got)
	}
}

// TestDeleteCommitsFirst: Delete reports the units admitted locally, pending
// ones included, and leaves no local state.
func TestDeleteCommitsFirst(t *testing.T) {
	srv := redistest.Start(t)
	l, err := NewAbsolute(srv.Pool(), []trypema.Option{trypema.WithSyncInterval(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	rate := trypema.MustPerSecond(1000)
	for i := 0; i < 20; i++ {
		l.Inc(ctx, "k", rate, 1) // from the second call on, mostly from the reservation
	}
	usage, existed, err := l.Delete(ctx, "k")
	if err != nil || !existed || usage != 20 {
		t.Fatalf("Delete = %d, %v, %v; want the 20 admitted units", usage, existed, err)
	}
	if s, _ := l.Get(ctx, "k"); s.Exists {
		t.Fatalf("the key survived Delete: %+v", s)
	}
}
