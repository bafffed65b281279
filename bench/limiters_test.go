package bench

import (
	"testing"
	"time"
)

// TestSameLimit checks that every adapter enforces the same Limit: on a
// fresh key, 20 quick calls under 10 per second admit exactly 10 in every
// library. The benchmarks' ratios are only fair if this holds.
func TestSameLimit(t *testing.T) {
	l := Limit{Name: "ten", Count: 10, Window: time.Second}
	check := func(t *testing.T, env *Env, lib Lib) {
		lim, err := lib.New(env, l)
		if err != nil {
			t.Fatal(err)
		}
		defer lim.Close()
		admitted := 0
		for range 20 {
			ok, err := lim.Allow(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				admitted++
			}
		}
		if admitted != 10 {
			t.Errorf("%s admitted %d of 20 calls under %d per %v, want 10", lib.Name, admitted, l.Count, l.Window)
		}
	}
	for _, lib := range LocalLibs {
		t.Run("local/"+lib.Name, func(t *testing.T) { check(t, nil, lib) })
	}
	env := redisEnv(t)
	for _, lib := range RedisLibs {
		t.Run("redis/"+lib.Name, func(t *testing.T) {
			if err := env.Flush(); err != nil {
				t.Fatal(err)
			}
			check(t, env, lib.Lib)
		})
	}
}

func TestKeySets(t *testing.T) {
	for _, ks := range []KeySet{HotKey(), Uniform(1000, 1), Zipf(100_000, zipfS, 1)} {
		if n := len(ks.Seq); n&(n-1) != 0 {
			t.Errorf("%s: sequence length %d is not a power of two", ks.Name, n)
		}
	}
	z := Zipf(100_000, zipfS, 1)
	hits := map[string]int{}
	for _, k := range z.Seq {
		hits[k]++
	}
	if top := hits["user_0"]; top < len(z.Seq)/20 {
		t.Errorf("zipf: the most popular key got %d of %d calls; the distribution is not skewed", top, len(z.Seq))
	}
}
