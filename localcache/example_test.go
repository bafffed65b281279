package localcache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/localcache"
)

func ExampleAbsolute() {
	ctx := context.Background()
	clk := trypema.NewManualClock(0) // a real program leaves the clock out
	limiter, err := localcache.NewAbsolute(trypema.WithWindow(time.Second), trypema.WithClock(clk))
	if err != nil {
		panic(err)
	}
	defer limiter.Close()

	rate := trypema.MustPerSecond(3) // 3 units per 1 s window
	for i := 0; i < 4; i++ {
		d, _ := limiter.Inc(ctx, "user_42", rate, 1)
		fmt.Println(d.Outcome, d.Remaining, d.RetryAfter)
		clk.Advance(200 * time.Millisecond)
	}
	// Output:
	// allowed 2 0s
	// allowed 1 0s
	// allowed 0 0s
	// rejected 0 400ms
}

func ExampleSuppressed() {
	ctx := context.Background()
	clk := trypema.NewManualClock(0)
	rng := rand.New(rand.NewPCG(1, 2))
	limiter, err := localcache.NewSuppressed(
		trypema.WithWindow(time.Second),
		trypema.WithHardLimitFactor(1.5),
		trypema.WithClock(clk),          // a real program leaves the clock
		trypema.WithRandom(rng.Float64), // and the draws out
	)
	if err != nil {
		panic(err)
	}
	defer limiter.Close()

	// 100 units per second, offered 500 per second for 4 seconds.
	rate := trypema.MustPerSecond(100)
	admitted := make([]int, 4)
	for ms := int64(0); ms < 4000; ms += 2 {
		clk.Set(ms)
		if d, _ := limiter.Inc(ctx, "api_key_7", rate, 1); d.Admitted {
			admitted[ms/1000]++
		}
	}
	f, _ := limiter.SuppressionFactor(ctx, "api_key_7")
	fmt.Printf("admitted per second %v, factor %.2f\n", admitted, f)
	// Output:
	// admitted per second [150 88 108 99], factor 0.80
}
