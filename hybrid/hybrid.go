package hybrid

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/internal/keytable"
)

// Option configures the hybrid provider beyond trypema.Option.
type Option func(*settings)

type settings struct {
	syncEveryCall bool
	scripts       []client.ScriptsOption
}

// WithSyncOnEveryCall makes every call go through Redis at once (reserve
// exactly what it needs, then commit it), which gives exactly the Redis
// provider's answers at the Redis provider's cost. It exists for
// conformance tests and for debugging; production code leaves it out.
func WithSyncOnEveryCall() Option { return func(s *settings) { s.syncEveryCall = true } }

// WithScriptsOptions passes options to the script runner (for example
// client.WithFunctions).
func WithScriptsOptions(o ...client.ScriptsOption) Option {
	return func(s *settings) { s.scripts = append(s.scripts, o...) }
}

// pendingBucket is a run of local calls not yet committed to Redis,
// coalesced with the same rule as Redis buckets.
type pendingBucket struct{ start, last, count, declined int64 }

// keyState is one key's local state.
type keyState struct {
	callRate   trypema.Rate // the rate of the key's latest call, sent with syncs
	known      bool         // heard from Redis at least once: the fields below are valid
	limit      int64        // C (absolute) or S (suppressed)
	hard       int64
	budget     int64 // reserved units not yet spent
	used       int64 // units admitted since the last sync: the demand
	remaining  int64 // C − live at the last sync (absolute)
	liveAtSync int64 // live (absolute) or accepted (suppressed) units at the last sync
	factor     float64

	pending     []pendingBucket // calls since the last sync
	inflight    []pendingBucket // calls sent in a sync whose result is not known
	inflightSeq int64

	// A rejection from Redis, reused locally until the next sync.
	reject     trypema.Decision
	rejectAt   int64
	rejectN    int64
	rejectLive bool

	outage  int64 // units admitted beyond the reservation while Redis was unreachable
	lastUse int64 // time of the latest call, for the sweep of idle keys

	dirty bool // registered for the next background sync
}

func (k *keyState) rate() trypema.Rate { return k.callRate }

// idle reports whether the key has nothing to sync.
func (k *keyState) idle() bool {
	return k.budget == 0 && len(k.pending) == 0 && k.inflight == nil && k.used == 0
}

// hasLocalState reports whether decisions can be made without Redis.
func (k *keyState) hasLocalState() bool { return k.known }

// add records a local call in the pending buckets.
func (k *keyState) add(now, bucketMs, n, declined int64) {
	if l := len(k.pending); l > 0 {
		if b := &k.pending[l-1]; now-b.start < bucketMs && now >= b.last {
			b.count += n
			b.declined += declined
			b.last = now
			return
		}
	}
	k.pending = append(k.pending, pendingBucket{start: now, last: now, count: n, declined: declined})
}

// base is what both strategies share.
type base struct {
	cfg      trypema.Config
	pool     *redis.Pool
	scripts  *client.Scripts
	set      settings
	strategy string // "abs" or "sup"
	clock    trypema.Clock
	random   func() float64
	keys     *keytable.Table[keyState]
	remote   trypema.Limiter // the Redis provider, for the operations that are not decisions
	instance string
	seq      atomic.Int64

	dirtyMu sync.Mutex
	dirty   map[string]struct{}

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func newBase(pool *redis.Pool, strategy string, opts []trypema.Option, hopts []Option) (*base, error) {
	if pool == nil {
		return nil, errors.Join(trypema.ErrInvalidArg, errors.New("hybrid: the Redis pool is nil; pass a *redis.Pool"))
	}
	cfg, err := trypema.NewConfig(opts...)
	if err != nil {
		return nil, err
	}
	b := &base{cfg: cfg, pool: pool, strategy: strategy, clock: cfg.Clock, random: cfg.Random,
		keys: keytable.New[keyState](), dirty: map[string]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range hopts {
		if o != nil {
			o(&b.set)
		}
	}
	b.scripts = client.NewScripts(pool, b.set.scripts...)
	if b.clock == nil {
		b.clock = trypema.SystemClock()
	}
	if b.random == nil {
		b.random = rand.Float64
	}
	var id [8]byte
	if _, err := cryptoRead(id[:]); err != nil {
		return nil, err
	}
	b.instance = hex.EncodeToString(id[:])
	go b.syncLoop()
	return b, nil
}

var cryptoRead = crand.Read

func (b *base) keysOf(key string) [2]string { return client.Keys(b.cfg.Prefix, b.strategy, key) }

// open reports err, or ErrClosed once the limiter is closed.
func (b *base) open(err error) error {
	if err == nil && b.closed.Load() {
		return trypema.ErrClosed
	}
	return err
}

func (b *base) checkKey(key string) error { return b.open(trypema.ValidateKey(key)) }

func (b *base) checkInc(key string, r trypema.Rate, n int64) error {
	return b.open(trypema.ValidateInc(key, r, n))
}

// markDirty registers key for the next background sync.
func (b *base) markDirty(key string, st *keyState) {
	if st.dirty {
		return
	}
	st.dirty = true
	b.dirtyMu.Lock()
	b.dirty[key] = struct{}{}
	b.dirtyMu.Unlock()
}

// prepare seals the pending calls into the in-flight batch (unless an
// earlier batch is still unconfirmed, which is sent again with its
// sequence number) and returns the sequence number and the batch to send.
func (b *base) prepare(st *keyState) (int64, []pendingBucket) {
	if st.inflight == nil && len(st.pending) > 0 {
		st.inflight, st.pending = st.pending, nil
		st.inflightSeq = b.seq.Add(1)
	}
	return st.inflightSeq, st.inflight
}

// want is how many units to keep reserved after a sync: twice the demand of
// the last interval, so a steady stream never waits for Redis and an idle
// key holds nothing.
func want(st *keyState) int64 { return 2 * st.used }

func encodePending(batch []pendingBucket, withDeclined bool) string {
	if len(batch) == 0 {
		return ""
	}
	buf := make([]byte, 0, 24*len(batch))
	for i, p := range batch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, p.last, 10)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, p.count, 10)
		if withDeclined {
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, p.declined, 10)
		}
	}
	return string(buf)
}

// syncLoop runs the background sync every sync interval until Close.
func (b *base) syncLoop() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.SyncInterval)
	defer t.Stop()
	sweepEvery := max(1, int(b.cfg.SweepInterval/b.cfg.SyncInterval))
	for tick := 1; ; tick++ {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.syncDirty(context.Background())
			if tick%sweepEvery == 0 {
				b.sweep()
			}
		}
	}
}

// sweep forgets keys with nothing to sync that have not been used for a
// window, so memory follows the live keys.
func (b *base) sweep() {
	now := b.clock.NowMs()
	b.keys.Sweep(func(st *keyState) bool {
		return st.idle() && st.inflight == nil && now-st.lastUse >= b.cfg.WindowMs()
	})
}

// syncDirty syncs every registered key in one pipeline. Keys whose sync
// fails stay registered and are retried on the next tick.
func (b *base) syncDirty(ctx context.Context) error {
	b.dirtyMu.Lock()
	if len(b.dirty) == 0 {
		b.dirtyMu.Unlock()
		return nil
	}
	keys := make([]string, 0, len(b.dirty))
	for k := range b.dirty {
		keys = append(keys, k)
	}
	clear(b.dirty)
	b.dirtyMu.Unlock()
	return b.syncKeys(ctx, keys, false)
}

// pipelineBatch bounds the commands sent in one round trip.
const pipelineBatch = 512

// syncKeys syncs keys in pipelines of at most pipelineBatch commands; final
// hands back every reservation (Close).
func (b *base) syncKeys(ctx context.Context, keys []string, final bool) error {
	var firstErr error
	for len(keys) > 0 {
		batch := keys[:min(len(keys), pipelineBatch)]
		keys = keys[len(batch):]
		if err := b.syncBatch(ctx, batch, final); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// syncBatch sends one sync per key in a single round trip and applies the
// replies. The keys stay locked from building their commands to applying
// the replies: a sync hands back the reservation it replaces, so no local
// call may spend it meanwhile, and one sync per key is in flight at a time.
// Other paths lock one key at a time, so holding several cannot deadlock.
func (b *base) syncBatch(ctx context.Context, keys []string, final bool) error {
	type item struct {
		key  string
		e    *keytable.Entry[keyState]
		used int64
	}
	items := make([]item, 0, len(keys))
	now := b.clock.NowMs()
	var cmds [][]any
	defer func() {
		for _, it := range items {
			it.e.Unlock()
		}
	}()
	for _, key := range keys {
		e := b.keys.Lock(key, false)
		if e == nil {
			continue
		}
		st := &e.V
		st.dirty = false
		if st.idle() {
			e.Unlock()
			continue
		}
		w := want(st)
		if final {
			w = 0
		}
		_, args := b.syncCmd(key, st, now, 0, 0, w)
		items = append(items, item{key: key, e: e, used: st.used})
		cmds = append(cmds, args)
		st.used = 0
	}
	if len(items) == 0 {
		return nil
	}
	fail := func(err error) error {
		for _, it := range items {
			it.e.V.used += it.used
			b.markDirty(it.key, &it.e.V)
		}
		return err
	}
	c, err := b.pool.GetContext(ctx)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	for _, args := range cmds {
		if err := c.Send("EVALSHA", args...); err != nil {
			return fail(err)
		}
	}
	if err := c.Flush(); err != nil {
		return fail(err)
	}
	var firstErr error
	loaded := false
	for _, it := range items {
		st := &it.e.V
		v, err := c.Receive()
		if client.IsNoScript(err) && !loaded {
			// The script cache is empty (restart, failover, flush): the
			// scripts did not run; load them and retry on the next tick.
			loaded = true
			if lerr := b.scripts.Load(ctx); lerr != nil && firstErr == nil {
				firstErr = lerr
			}
		}
		if err == nil {
			_, err = b.applySync(st, v, now, 0)
		}
		if err != nil {
			st.used += it.used
			b.markDirty(it.key, st)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !st.idle() {
			b.markDirty(it.key, st)
		}
	}
	return firstErr
}

// requeue registers keys again after a failed round trip.
func (b *base) requeue(keys []string) {
	for _, key := range keys {
		if e := b.keys.Lock(key, false); e != nil {
			b.markDirty(key, &e.V)
			e.Unlock()
		}
	}
}

// flushKey commits key's pending calls and hands back its reservation, so
// that an operation that reads or changes Redis directly sees everything.
func (b *base) flushKey(ctx context.Context, key string) error {
	e := b.keys.Lock(key, false)
	if e == nil {
		return nil
	}
	defer e.Unlock()
	st := &e.V
	if st.inflight == nil && len(st.pending) == 0 && st.budget == 0 {
		return nil
	}
	_, err := b.syncNow(ctx, key, st, b.clock.NowMs(), 0, 0, 0)
	return err
}

// deleteKey commits key's pending calls, deletes it in Redis with del and
// forgets its local state, all under the key's lock, so that no call of
// this instance slips in between and is lost.
func (b *base) deleteKey(ctx context.Context, key string, del func(context.Context, string) (int64, bool, error)) (int64, bool, error) {
	e := b.keys.Lock(key, false)
	if e == nil {
		return del(ctx, key)
	}
	defer e.Unlock()
	st := &e.V
	if !st.idle() || st.inflight != nil {
		if _, err := b.syncNow(ctx, key, st, b.clock.NowMs(), 0, 0, 0); err != nil {
			return 0, false, err
		}
	}
	usage, existed, err := del(ctx, key)
	if err == nil {
		*st = keyState{}
	}
	return usage, existed, err
}

// flushAll commits every key's pending calls and hands back every
// reservation.
func (b *base) flushAll(ctx context.Context) error { return b.syncKeys(ctx, b.keys.Keys(), true) }

// syncNow runs one sync of key synchronously (the key is locked) and
// applies the reply.
func (b *base) syncNow(ctx context.Context, key string, st *keyState, now, need int64, u float64, wantUnits int64) (trypema.Decision, error) {
	sc, args := b.syncCmd(key, st, now, need, u, wantUnits)
	c, err := b.pool.GetContext(ctx)
	if err != nil {
		b.markDirty(key, st) // the in-flight batch is retried later
		return trypema.Decision{}, sc.WrapError(ctx, err)
	}
	defer c.Close()
	v, err := doContext(ctx, c, "EVALSHA", args...)
	if client.IsNoScript(err) {
		if _, lerr := doContext(ctx, c, "SCRIPT", "LOAD", sc.Source()); lerr != nil {
			b.markDirty(key, st)
			return trypema.Decision{}, sc.WrapError(ctx, lerr)
		}
		v, err = doContext(ctx, c, "EVALSHA", args...)
	}
	if err != nil {
		b.markDirty(key, st)
		return trypema.Decision{}, sc.WrapError(ctx, err)
	}
	d, err := b.applySync(st, v, now, need)
	if !st.idle() {
		b.markDirty(key, st)
	}
	return d, err
}

func doContext(ctx context.Context, c redis.Conn, cmd string, args ...any) (any, error) {
	if ctx.Done() == nil {
		return c.Do(cmd, args...)
	}
	return redis.DoContext(c, ctx, cmd, args...)
}

// syncCmd builds the sync script call of the strategy for key.
func (b *base) syncCmd(key string, st *keyState, now, need int64, u float64, wantUnits int64) (*client.Script, []any) {
	seq, batch := b.prepare(st)
	if b.strategy == strategyAbsolute {
		_, args := client.AbsoluteSyncCmd(b.keysOf(key), client.AbsoluteSyncArgs{
			WindowMs: b.cfg.WindowMs(), BucketMs: b.cfg.BucketMs(), Rate: float64(st.rate()), Instance: b.instance,
			Seq: seq, Need: need, Want: wantUnits, Pending: client.Some(encodePending(batch, false)), NowMs: client.Some(now),
		})
		return client.AbsoluteSyncScript, args
	}
	_, args := client.SuppressedSyncCmd(b.keysOf(key), client.SuppressedSyncArgs{
		WindowMs: b.cfg.WindowMs(), BucketMs: b.cfg.BucketMs(), HardLimitFactor: b.cfg.HardLimitFactor,
		FactorCacheMs: b.cfg.FactorCacheMs(), Rate: float64(st.rate()), Instance: b.instance, Seq: seq,
		Need: need, U: u, Want: wantUnits, Pending: client.Some(encodePending(batch, true)), NowMs: client.Some(now),
	})
	return client.SuppressedSyncScript, args
}

// Close flushes every pending call, hands back every reservation and stops
// the sync worker. It returns the first error of the final flush; pending
// calls that could not be committed are lost only then.
func (b *base) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.stop)
		<-b.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.closeErr = b.flushAll(ctx)
	})
	return b.closeErr
}

// applySync applies a sync reply to the key's state: the in-flight batch is
// committed, the reservation replaced, and the decision for need (if any)
// returned.
func (b *base) applySync(st *keyState, v any, now, need int64) (trypema.Decision, error) {
	if b.strategy == strategyAbsolute {
		r, err := client.ParseAbsoluteSyncReply(v)
		if err != nil {
			return trypema.Decision{}, err
		}
		st.inflight = nil
		st.known, st.limit, st.hard = true, r.Limit, r.Limit
		st.remaining, st.liveAtSync, st.budget, st.outage = r.Remaining, r.Live, r.Granted, 0
		st.rejectLive = false
		// Admitted need units were recorded by the script at now: they are
		// neither pending nor part of the reservation.
		switch r.Outcome {
		case "allowed":
			st.used += need
			return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: r.Limit, Remaining: st.remaining + st.budget}, nil
		case "rejected":
			d := trypema.Decision{Outcome: trypema.Rejected, Limit: r.Limit, Remaining: max(0, r.Remaining),
				RetryAfter: time.Duration(r.RetryAfterMs) * time.Millisecond, RemainingAfterWaiting: r.RemainingAfterWaiting}
			st.reject, st.rejectAt, st.rejectN, st.rejectLive = d, now, need, true
			return d, nil
		}
		return trypema.Decision{}, nil
	}
	r, err := client.ParseSuppressedSyncReply(v)
	if err != nil {
		return trypema.Decision{}, err
	}
	st.inflight = nil
	st.known, st.limit, st.hard, st.factor = true, r.Limit, r.Hard, r.Factor
	st.liveAtSync, st.budget, st.outage = r.Accepted, r.Granted, 0
	switch r.Outcome {
	case "allowed":
		st.used += need
		return trypema.Decision{Outcome: trypema.Allowed, Admitted: true, Limit: r.Limit, Remaining: r.Remaining}, nil
	case "suppressed":
		if r.Admitted == 1 {
			st.used += need
		}
		return trypema.Decision{Outcome: trypema.Suppressed, Admitted: r.Admitted == 1, Limit: r.Limit,
			Remaining: r.Remaining, SuppressionFactor: r.Factor}, nil
	}
	return trypema.Decision{}, nil
}
