package keytable

import (
	"fmt"
	"slices"
	"testing"
)

func TestLockCreatesOnceAndRemoveSweepClear(t *testing.T) {
	tb := New[int]()
	if tb.Lock("a", false) != nil {
		t.Fatal("Lock without create made an entry")
	}
	for i := 0; i < 3; i++ {
		e := tb.Lock("a", true)
		e.V++
		e.Unlock()
	}
	e := tb.Lock("a", false)
	if e == nil || e.V != 3 || e.Key() != "a" {
		t.Fatalf("entry a = %+v, want one entry counted 3 times", e)
	}
	e.Unlock()
	for i := 0; i < 100; i++ {
		e := tb.Lock(fmt.Sprint("k", i), true)
		e.V = i
		e.Unlock()
	}
	if tb.Len() != 101 {
		t.Fatalf("Len = %d, want 101", tb.Len())
	}
	var seen int
	if !tb.Remove("k7", func(v *int) { seen = *v }) || seen != 7 || tb.Lock("k7", false) != nil {
		t.Fatal("Remove did not run f on k7's state or left it behind")
	}
	if tb.Remove("k7", nil) {
		t.Fatal("Remove of a missing key reported it existed")
	}
	tb.Sweep(func(v *int) bool { return *v%2 == 0 }) // drops the even values
	keys := tb.Keys()
	slices.Sort(keys)
	if len(keys) != 50 || !slices.Contains(keys, "a") || slices.Contains(keys, "k8") || !slices.Contains(keys, "k9") {
		t.Fatalf("after the sweep: %d keys %v", len(keys), keys[:5])
	}
	var cleared int
	tb.Clear(func(*int) { cleared++ })
	if cleared != 50 || tb.Len() != 0 {
		t.Fatalf("Clear visited %d and left %d", cleared, tb.Len())
	}
}

// After Remove the key starts afresh: the removed entry is dead and never
// handed out again, even from the shard's hot-entry cache.
func TestRemovedEntriesAreNotReused(t *testing.T) {
	tb := New[int]()
	old := tb.Lock("hot", true) // now the shard's hot entry
	old.V = 41
	old.Unlock()
	tb.Remove("hot", nil)
	e := tb.Lock("hot", true)
	defer e.Unlock()
	if e == old || e.V != 0 {
		t.Fatalf("Lock after Remove returned the removed entry (V=%d)", e.V)
	}
	if !old.dead {
		t.Fatal("the removed entry is not marked dead")
	}
}
