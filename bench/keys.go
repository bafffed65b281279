package bench

import (
	"math/rand/v2"
	"strconv"
)

// A KeySet is the sequence of keys a benchmark walks through, the same for
// every library. Sequences are pre-generated from fixed seeds so that no
// random numbers or string building happen inside the measured loop, and
// their length is a power of two so that walking wraps with a mask.
type KeySet struct {
	Name string
	// Seq is the walk; callers index it with i & (len(Seq)-1).
	Seq []string
	// Distinct holds every key the walk can produce, for warming up.
	Distinct []string
}

// seqLen is the length of a generated walk: 2^20 draws, long enough that
// the distribution's shape survives any benchmark's starting offset.
const seqLen = 1 << 20

// Keys returns n distinct key strings, "user_0" … "user_{n-1}".
func Keys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user_" + strconv.Itoa(i)
	}
	return keys
}

// HotKey is one key that every call hits.
func HotKey() KeySet {
	k := Keys(1)
	return KeySet{Name: "hot", Seq: k, Distinct: k}
}

// Uniform draws each call's key uniformly from n keys.
func Uniform(n int, seed uint64) KeySet {
	keys := Keys(n)
	r := rand.New(rand.NewPCG(seed, 1))
	seq := make([]string, seqLen)
	for i := range seq {
		seq[i] = keys[r.IntN(n)]
	}
	return KeySet{Name: "uniform" + count(n), Seq: seq, Distinct: keys}
}

// Zipf draws each call's key from n keys with a Zipf distribution of
// exponent s (P(k) ∝ 1/(1+k)^s): a few keys get most calls and a long tail
// is seen rarely, which is what per-user or per-IP traffic looks like.
func Zipf(n int, s float64, seed uint64) KeySet {
	keys := Keys(n)
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 2)), s, 1, uint64(n-1))
	seq := make([]string, seqLen)
	for i := range seq {
		seq[i] = keys[z.Uint64()]
	}
	return KeySet{Name: "zipf" + count(n), Seq: seq, Distinct: keys}
}

func count(n int) string {
	switch {
	case n%1000_000 == 0:
		return strconv.Itoa(n/1000_000) + "M"
	case n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
