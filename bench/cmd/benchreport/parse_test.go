package main

import (
	"math"
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
BenchmarkLocal/keys=hot/limit=open/lib=trypema-absolute/run=serial-2  100  120 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkLocal/keys=hot/limit=open/lib=x-time-rate/run=serial-2       100  150 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkLocal/keys=hot/limit=open/lib=sethvargo/run=serial-2         100  100 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkLocal/keys=hot/limit=open/lib=trypema-absolute/run=serial-2  100  140 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkLocal/keys=hot/limit=open/lib=x-time-rate/run=serial-2       100  150 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkLocal/keys=hot/limit=open/lib=sethvargo/run=serial-2         100  110 ns/op  1.000 admitted/op  0 B/op  0 allocs/op
BenchmarkRedis/keys=hot/limit=open/lib=redis_rate/callers=16-2        100  5000 ns/op  1.000 admitted/op  20.5 server-µs/op  688 B/op  22 allocs/op
`

func TestParseGroupsRowsAndFindsBestPeer(t *testing.T) {
	rows, err := parse(strings.NewReader(sampleOutput), "sample")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2 (one per tier, scenario and concurrency)", len(rows))
	}
	local := rows[0]
	if local.label() != "hot key, open, 1 goroutine" || len(local.cells) != 3 {
		t.Fatalf("first row %q has %d libraries, want hot key, open, 1 goroutine with 3", local.label(), len(local.cells))
	}
	peer, own := local.best(isOurs)
	if peer == nil || peer.lib != "sethvargo" || len(own) != 1 || own[0].lib != "trypema-absolute" {
		t.Fatalf("best peer %v, own %v; want sethvargo and trypema-absolute", peer, own)
	}
	if got := own[0].ns.median; got != 130 {
		t.Errorf("median of 120 and 140 ns = %v, want 130", got)
	}
	if got := fmtRatio(own[0], peer); got != "1.24×" {
		t.Errorf("ratio = %s, want 1.24× (130 / 105)", got)
	}
	if got := own[0].ns.spread; math.Abs(got-10.0/130) > 1e-9 {
		t.Errorf("spread = %v, want 10/130: the largest distance of a sample from the median, relative", got)
	}
	redis := rows[1]
	if redis.label() != "hot key, open, 16 callers" || redis.cells[0].serverUsec.median != 20.5 {
		t.Errorf("Redis row %q with server µs %v, want 16 callers and 20.5", redis.label(), redis.cells[0].serverUsec.median)
	}
}

func TestPerLimitedKeyGroupsTrypemaKeysByHashTag(t *testing.T) {
	avg, n := perLimitedKey(map[string]int64{
		"bench:v1:abs:{user_1}:buckets": 100, "bench:v1:abs:{user_1}:meta": 50,
		"bench:v1:abs:{user_2}:buckets": 110, "bench:v1:abs:{user_2}:meta": 40,
	})
	if n != 2 || avg != 150 {
		t.Errorf("perLimitedKey = %v bytes over %d keys, want 150 over 2", avg, n)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtNs(93.94), "93.9 ns"}, {fmtNs(140_880), "140,880 ns"},
		{fmtOps(100), "10.00 M"}, {fmtOps(140_880), "7.1 k"},
		{fmtAdmitted(1), "1"}, {fmtAdmitted(0), "0"}, {fmtAdmitted(0.000012), "1e-05"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
