package localcache

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/keytable"
	"github.com/trypema-go/trypema/internal/sliding"
)

// store holds the keys of one limiter in a keytable: each key has its own
// mutex, which makes admission exact under concurrency.
type store struct {
	p      sliding.Params
	clock  trypema.Clock
	random func() float64
	keys   *keytable.Table[sliding.State]

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type entry = keytable.Entry[sliding.State]

func newStore(suppressed bool, opts []trypema.Option) (*store, error) {
	cfg, err := trypema.NewConfig(opts...)
	if err != nil {
		return nil, err
	}
	s := &store{
		p:      sliding.ParamsOf(cfg, suppressed),
		clock:  cfg.Clock,
		random: cfg.Random,
		keys:   keytable.New[sliding.State](),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.random == nil {
		s.random = rand.Float64
	}
	if s.clock == nil {
		s.clock = trypema.SystemClock()
	}
	go s.sweepLoop(cfg.SweepInterval)
	return s, nil
}

// lock returns key's entry, locked, creating it when create is set; nil
// when the key has no entry and create is not set.
func (s *store) lock(key string, create bool) *entry { return s.keys.Lock(key, create) }

// open reports err, or ErrClosed once the limiter is closed.
func (s *store) open(err error) error {
	if err == nil && s.closed.Load() {
		return trypema.ErrClosed
	}
	return err
}

func (s *store) checkKey(key string) error { return s.open(trypema.ValidateKey(key)) }

func (s *store) checkInc(key string, r trypema.Rate, n int64) error {
	return s.open(trypema.ValidateInc(key, r, n))
}

func (s *store) get(key string) trypema.Snapshot {
	e := s.lock(key, false)
	if e == nil {
		return trypema.Snapshot{}
	}
	snap := e.V.Snapshot(&s.p, s.clock.NowMs())
	e.Unlock()
	return snap
}

func (s *store) setRateLimit(key string, r trypema.Rate) (trypema.Rate, bool, error) {
	e := s.lock(key, false)
	if e == nil {
		return 0, false, nil
	}
	defer e.Unlock()
	return e.V.SetRateLimit(&s.p, s.clock.NowMs(), r)
}

func (s *store) setIf(key string, r trypema.Rate, cmp trypema.Comparator, n int64, mode trypema.HistoryMode) (trypema.SetResult, error) {
	e := s.lock(key, true)
	defer e.Unlock()
	return e.V.SetIf(&s.p, s.clock.NowMs(), r, cmp, n, mode)
}

// remove deletes key and reports its usage.
func (s *store) remove(key string) (usage int64, existed bool) {
	s.keys.Remove(key, func(st *sliding.State) { usage, existed = st.Delete(&s.p, s.clock.NowMs()) })
	return usage, existed
}

func (s *store) clear() { s.keys.Clear(nil) }

// sweep drops every key whose usage has left the window.
func (s *store) sweep() {
	now := s.clock.NowMs()
	s.keys.Sweep(func(st *sliding.State) bool { return st.Idle(&s.p, now) })
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
