package conformance

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/hybrid"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/localcache"
)

func TestMain(m *testing.M) { redistest.RunMain(m) }

const vectorDir = "../lua/vectors"

// provider builds a limiter of v's strategy driven by clk and the draw *u.
type provider struct {
	name string
	make func(t *testing.T, v *Vector, id int, clk trypema.Clock, u *float64) trypema.Limiter
}

func localProvider() provider {
	return provider{"local", func(t *testing.T, v *Vector, _ int, clk trypema.Clock, u *float64) trypema.Limiter {
		var l trypema.Limiter
		var err error
		if v.Strategy == "absolute" {
			l, err = localcache.NewAbsolute(v.Options(clk, u)...)
		} else {
			l, err = localcache.NewSuppressed(v.Options(clk, u)...)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}}
}

func hybridProvider(srv *redistest.Server) provider {
	return provider{"hybrid", func(t *testing.T, v *Vector, id int, clk trypema.Clock, u *float64) trypema.Limiter {
		opts := append(v.Options(clk, u), trypema.WithPrefix(fmt.Sprintf("cv%d_hybrid", id)))
		var l trypema.Limiter
		var err error
		if v.Strategy == "absolute" {
			l, err = hybrid.NewAbsolute(srv.Pool(), opts, hybrid.WithSyncOnEveryCall())
		} else {
			l, err = hybrid.NewSuppressed(srv.Pool(), opts, hybrid.WithSyncOnEveryCall())
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}}
}

func redisProvider(name string, srv *redistest.Server, sopts ...client.ScriptsOption) provider {
	return provider{name, func(t *testing.T, v *Vector, id int, clk trypema.Clock, u *float64) trypema.Limiter {
		// A prefix per vector and provider keeps vectors apart in one server.
		opts := append(v.Options(clk, u), trypema.WithPrefix(fmt.Sprintf("cv%d_%s", id, name)))
		var l trypema.Limiter
		var err error
		if v.Strategy == "absolute" {
			l, err = client.NewAbsoluteWith(srv.Pool(), opts, sopts)
		} else {
			l, err = client.NewSuppressedWith(srv.Pool(), opts, sopts)
		}
		if err != nil {
			t.Fatal(err)
		}
		return l
	}}
}

// run plays every step of v on one provider and returns the results.
func run(t *testing.T, p provider, v *Vector, id int) []Result {
	ctx := context.Background()
	clk := trypema.NewManualClock(0)
	var u float64
	l := p.make(t, v, id, clk, &u)
	out := make([]Result, len(v.Steps))
	for i, s := range v.Steps {
		clk.Set(s.At)
		u = s.U
		out[i] = Play(ctx, l, s)
	}
	return out
}

// TestConformance plays every vector against every provider: each step
// must give the vector's expected fields, and every provider must give
// exactly the same full results as the first.
func TestConformance(t *testing.T) {
	vectors, err := LoadVectors(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors found in " + vectorDir)
	}
	srv := redistest.Shared(t)
	providers := []provider{localProvider(), redisProvider("evalsha", srv),
		redisProvider("evalsha_ro", srv, client.WithEvalRO()), redisProvider("fcall", srv, client.WithFunctions()),
		hybridProvider(srv)}
	for id := range vectors {
		v := &vectors[id]
		t.Run(v.file+"/"+v.Name, func(t *testing.T) {
			var first []Result
			for _, p := range providers {
				got := run(t, p, v, id)
				for i, s := range v.Steps {
					if bad := Mismatches(s.Want, got[i]); len(bad) > 0 {
						t.Errorf("%s: step %d (%s %s at %d): %v", p.name, i, s.Op, s.Key, s.At, bad)
					}
				}
				if first == nil {
					first = got
				} else if diff := cmp.Diff(first, got); diff != "" {
					t.Errorf("%s differs from %s (-%s +%s):\n%s", p.name, providers[0].name, providers[0].name, p.name, diff)
				}
			}
		})
	}
	t.Logf("%d vectors, %d providers", len(vectors), len(providers))
}
