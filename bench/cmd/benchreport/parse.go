package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// A row is one scenario of one tier (Local or Redis) at one concurrency:
// the libraries measured under identical conditions, side by side.
type row struct {
	tier, keys, limit, run string
	cells                  []*cell // in the order the libraries ran
}

// A cell is one library's results in a row, summarised over -count runs.
type cell struct {
	lib                                     string
	ns, allocs, bytes, admitted, serverUsec stat
	samples                                 map[string][]float64 // by unit
}

// stat is the median of a sample and its spread: the largest distance
// from the median to a sample, relative to the median.
type stat struct {
	median, spread float64
	n              int
}

func summarise(xs []float64) stat {
	if len(xs) == 0 {
		return stat{median: math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var spread float64
	if m != 0 {
		spread = math.Max(s[len(s)-1]/m-1, 1-s[0]/m)
	}
	return stat{median: m, spread: spread, n: len(s)}
}

func (s stat) ok() bool { return !math.IsNaN(s.median) }

// parse reads go test -bench output and groups it into rows.
func parse(r io.Reader, name string) ([]*row, error) {
	var rows []*row
	byKey := map[string]*row{}
	br := benchfmt.NewReader(r, name)
	for br.Scan() {
		switch rec := br.Result().(type) {
		case *benchfmt.SyntaxError:
			fmt.Fprintln(os.Stderr, "benchreport: skipping:", rec)
		case *benchfmt.Result:
			base, parts := rec.Name.Parts()
			kv := map[string]string{}
			for _, p := range parts {
				if k, v, ok := strings.Cut(strings.TrimPrefix(string(p), "/"), "="); ok {
					kv[k] = v
				}
			}
			run := kv["run"]
			if c, ok := kv["callers"]; ok {
				run = "callers=" + c
			}
			tier := strings.TrimPrefix(string(base), "Benchmark")
			key := strings.Join([]string{tier, kv["keys"], kv["limit"], run}, "|")
			rw := byKey[key]
			if rw == nil {
				rw = &row{tier: tier, keys: kv["keys"], limit: kv["limit"], run: run}
				byKey[key] = rw
				rows = append(rows, rw)
			}
			var c *cell
			for _, x := range rw.cells {
				if x.lib == kv["lib"] {
					c = x
				}
			}
			if c == nil {
				c = &cell{lib: kv["lib"], samples: map[string][]float64{}}
				rw.cells = append(rw.cells, c)
			}
			for _, v := range rec.Values {
				unit, val := v.Unit, v.Value
				if v.OrigUnit != "" {
					unit, val = v.OrigUnit, v.OrigValue
				}
				c.samples[unit] = append(c.samples[unit], val)
			}
		}
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errNoResults
	}
	for _, rw := range rows {
		for _, c := range rw.cells {
			c.ns = summarise(c.samples["ns/op"])
			c.allocs = summarise(c.samples["allocs/op"])
			c.bytes = summarise(c.samples["B/op"])
			c.admitted = summarise(c.samples["admitted/op"])
			c.serverUsec = summarise(c.samples["server-µs/op"])
		}
	}
	return rows, nil
}

// best returns the fastest peer of the row (by median ns/op) and the
// cells of Trypema-Go's own libraries.
func (rw *row) best(ours func(lib string) bool) (peer *cell, own []*cell) {
	for _, c := range rw.cells {
		if ours(c.lib) {
			own = append(own, c)
			continue
		}
		if c.ns.ok() && (peer == nil || c.ns.median < peer.ns.median) {
			peer = c
		}
	}
	return peer, own
}

// overlaps reports whether two cells' ranges of ns/op samples overlap:
// the difference between them is within the run-to-run noise.
func overlaps(a, b *cell) bool {
	alo, ahi := minMax(a.samples["ns/op"])
	blo, bhi := minMax(b.samples["ns/op"])
	return alo <= bhi && blo <= ahi
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}
