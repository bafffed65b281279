package localcache

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/sliding"
)

// numShards spreads keys over independently locked maps so that goroutines
// working on different keys rarely meet on one lock.
const numShards = 64

// store holds the keys of one limiter. Each key has its own mutex, which
// makes admission exact under concurrency; the shard lock only guards the
// map and is never held while a key's algorithm runs.
type store struct {
	p      sliding.Params
	clock  trypema.Clock
	random func() float64
	seed   maphash.Seed
	shards [numShards]shard

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type shard struct {
	// hot is the shard's most recently used entry. A hit skips the read
	// lock and the map, which is most of the cost of finding a hot key.
	hot atomic.Pointer[entry]
	mu  sync.RWMutex
	m   map[uint64]*entry // by maphash of the key; collisions chain through next
	_   [32]byte          // keeps neighbouring shards' locks off one cache line
}

type entry struct {
	mu   sync.Mutex
	dead bool // removed from its map; holders of a stale pointer look again
	st   sliding.State
	key  string
	next *entry // another key with the same 64-bit hash (practically never)
}

// find returns the entry of key in the chain starting at e.
func find(e *entry, key string) *entry {
	for e != nil && e.key != key {
		e = e.next
	}
	return e
}

// unlink removes e from sh's map, keeping any colliding keys.
func (sh *shard) unlink(h uint64, e *entry) {
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

func newStore(suppressed bool, opts []trypema.Option) (*store, error) {
	cfg, err := trypema.NewConfig(opts...)
	if err != nil {
		return nil, err
	}
	s := &store{
		p:      sliding.ParamsOf(cfg, suppressed),
		clock:  cfg.Clock,
		random: cfg.Random,
		seed:   maphash.MakeSeed(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.random == nil {
		s.random = rand.Float64
	}
	if s.clock == nil {
		s.clock = trypema.SystemClock()
	}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*entry)
	}
	go s.sweepLoop(cfg.SweepInterval)
	return s, nil
}

// locate returns key's hash and shard. Maps are keyed by the hash, which
// is computed once here, so the map itself never hashes the key again.
func (s *store) locate(key string) (uint64, *shard) {
	h := maphash.String(s.seed, key)
	return h, &s.shards[h>>58] // the top bits: the map uses the low ones
}

// lock returns key's entry, locked, creating it when create is set; nil
// when the key has no entry and create is not set.
func (s *store) lock(key string, create bool) *entry {
	h, sh := s.locate(key)
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
					e = &entry{key: key, next: head}
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

// checkKey validates key and that the limiter is open.
func (s *store) checkKey(key string) error {
	if err := trypema.ValidateKey(key); err != nil {
		return err
	}
	if s.closed.Load() {
		return trypema.ErrClosed
	}
	return nil
}

// checkInc validates an Inc call's arguments.
func (s *store) checkInc(key string, r trypema.Rate, n int64) error {
	if err := trypema.ValidateRate(r); err != nil {
		return err
	}
	if err := trypema.ValidateCount(n); err != nil {
		return err
	}
	return s.checkKey(key)
}

func (s *store) get(key string) trypema.Snapshot {
	e := s.lock(key, false)
	if e == nil {
		return trypema.Snapshot{}
	}
	snap := e.st.Snapshot(&s.p, s.clock.NowMs())
	e.mu.Unlock()
	return snap
}

func (s *store) setRateLimit(key string, r trypema.Rate) (trypema.Rate, bool, error) {
	e := s.lock(key, false)
	if e == nil {
		return 0, false, nil
	}
	defer e.mu.Unlock()
	return e.st.SetRateLimit(&s.p, s.clock.NowMs(), r)
}

func (s *store) setIf(key string, r trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	e := s.lock(key, true)
	defer e.mu.Unlock()
	return e.st.SetIf(&s.p, s.clock.NowMs(), r, cmp, n, mode)
}

func checkSetIf(r trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) error {
	if err := trypema.ValidateRate(r); err != nil {
		return err
	}
	if err := cmp.Validate(); err != nil {
		return err
	}
	if err := trypema.ValidateTarget(n); err != nil {
		return err
	}
	return mode.Validate() // in the scripts' argument order
}

// remove deletes key from its map and reports its usage.
func (s *store) remove(key string) (int64, bool) {
	h, sh := s.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := find(sh.m[h], key)
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	usage, existed := e.st.Delete(&s.p, s.clock.NowMs())
	e.dead = true
	e.mu.Unlock()
	sh.unlink(h, e)
	return usage, existed
}

func (s *store) clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				e.mu.Lock()
				e.dead = true
				e.mu.Unlock()
			}
		}
		sh.m = make(map[uint64]*entry)
		sh.hot.Store(nil)
		sh.mu.Unlock()
	}
}

// sweep drops every key whose usage has left the window. Keys busy at
// that moment are left for the next sweep.
func (s *store) sweep() {
	now := s.clock.NowMs()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for h, head := range sh.m {
			for e := head; e != nil; {
				next := e.next
				if e.mu.TryLock() {
					if e.st.Idle(&s.p, now) {
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

// keys returns how many keys are held in memory.
func (s *store) keys() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
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

func (s *store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *store) close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
	})
	return nil
}
