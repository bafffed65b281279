// Package keytable is the concurrent map from limited keys to their state
// that the local and hybrid providers share. Each key has its own mutex, so
// work on one key is serialised (which makes admission exact) while
// different keys proceed in parallel; the shard locks only guard the maps and
// are never held while a key's own work runs.
package keytable

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// numShards spreads keys over independently locked maps so that goroutines
// working on different keys rarely meet on one lock.
const numShards = 64

// Entry is one key's state, V, with its lock. Lock returns it locked;
// the caller unlocks it with Unlock.
type Entry[T any] struct {
	mu   sync.Mutex
	dead bool // removed from its map; holders of a stale pointer look again
	V    T
	key  string
	next *Entry[T] // another key with the same 64-bit hash (practically never)
}

// Key returns the entry's key.
func (e *Entry[T]) Key() string { return e.key }

// Unlock releases the entry.
func (e *Entry[T]) Unlock() { e.mu.Unlock() }

// Table maps keys to entries. The zero value is not usable; call New.
type Table[T any] struct {
	seed   maphash.Seed
	shards [numShards]shard[T]
}

type shard[T any] struct {
	// hot is the shard's most recently used entry. A hit skips the read
	// lock and the map, which is most of the cost of finding a hot key.
	hot atomic.Pointer[Entry[T]]
	mu  sync.RWMutex
	m   map[uint64]*Entry[T] // by maphash of the key; collisions chain through next
	_   [32]byte             // keeps neighbouring shards' locks off one cache line
}

// New returns an empty table.
func New[T any]() *Table[T] {
	t := &Table[T]{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*Entry[T])
	}
	return t
}

func find[T any](e *Entry[T], key string) *Entry[T] {
	for e != nil && e.key != key {
		e = e.next
	}
	return e
}

// unlink removes e from sh's map, keeping any colliding keys. The shard's
// write lock is held.
func (sh *shard[T]) unlink(h uint64, e *Entry[T]) {
	sh.hot.CompareAndSwap(e, nil)
	head := sh.m[h]
	if head == e {
		if e.next == nil {
			delete(sh.m, h)
		} else {
			sh.m[h] = e.next
		}
		return
	}
	for p := head; p != nil; p = p.next {
		if p.next == e {
			p.next = e.next
			return
		}
	}
}

// locate returns key's hash and shard. Maps are keyed by the hash, which
// is computed once here, so the map itself never hashes the key again.
func (t *Table[T]) locate(key string) (uint64, *shard[T]) {
	h := maphash.String(t.seed, key)
	return h, &t.shards[h>>58] // the top bits: the map uses the low ones
}

// Lock returns key's entry, locked, creating it when create is set; nil
// when the key has no entry and create is not set.
func (t *Table[T]) Lock(key string, create bool) *Entry[T] {
	h, sh := t.locate(key)
	for {
		e := sh.hot.Load()
		if e == nil || e.key != key {
			sh.mu.RLock()
			e = find(sh.m[h], key)
			sh.mu.RUnlock()
			if e == nil {
				if !create {
					return nil
				}
				sh.mu.Lock()
				head := sh.m[h]
				if e = find(head, key); e == nil {
					e = &Entry[T]{key: key, next: head}
					sh.m[h] = e
				}
				sh.mu.Unlock()
			}
			sh.hot.Store(e)
		}
		e.mu.Lock()
		if !e.dead {
			return e
		}
		e.mu.Unlock()
		sh.hot.CompareAndSwap(e, nil)
	}
}

// Remove deletes key's entry after calling f on its state under the
// entry's lock; it reports whether the key had an entry.
func (t *Table[T]) Remove(key string, f func(*T)) bool {
	h, sh := t.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := find(sh.m[h], key)
	if e == nil {
		return false
	}
	e.mu.Lock()
	if f != nil {
		f(&e.V)
	}
	e.dead = true
	e.mu.Unlock()
	sh.unlink(h, e)
	return true
}

// Sweep removes every entry for which drop, called under the entry's lock,
// returns true. Entries busy at that moment are left for the next sweep.
func (t *Table[T]) Sweep(drop func(*T) bool) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for h, head := range sh.m {
			for e := head; e != nil; {
				next := e.next
				if e.mu.TryLock() {
					if drop(&e.V) {
						e.dead = true
						sh.unlink(h, e)
					}
					e.mu.Unlock()
				}
				e = next
			}
		}
		sh.mu.Unlock()
	}
}

// Clear removes every entry, calling f (if not nil) on each under its lock.
func (t *Table[T]) Clear(f func(*T)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				e.mu.Lock()
				if f != nil {
					f(&e.V)
				}
				e.dead = true
				e.mu.Unlock()
			}
		}
		sh.m = make(map[uint64]*Entry[T])
		sh.hot.Store(nil)
		sh.mu.Unlock()
	}
}

// Keys returns the keys held, in no particular order.
func (t *Table[T]) Keys() []string {
	var out []string
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				out = append(out, e.key)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// Len returns how many keys are held.
func (t *Table[T]) Len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}
