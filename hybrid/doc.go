// Package hybrid is the provider for high-throughput services that share
// limits through Redis: decisions come from local state at near-local speed,
// and Redis stays the shared truth, synchronised every sync interval with one
// pipelined script call per busy key.
//
// # How it stays exact
//
// An instance admits locally only units it has reserved in Redis. A
// reservation is recorded in Redis as ordinary usage at the time it is
// granted (by the sync scripts absolute_sync and suppressed_sync), so every
// other instance and every Redis-provider caller sees it at once. At the next
// sync the instance hands the reservation back and records the units it
// actually admitted at the times they happened (never earlier than Redis's
// newest call), in one atomic script call. Every admitted unit is therefore
// counted in Redis from before it was admitted until a full window after it
// happened: N instances sharing a key never over-admit while Redis is
// reachable.
//
// The price is utilisation: units reserved and not spent are held until the
// next sync (at most one sync interval). Reservations follow demand (twice
// the units an instance admitted in the last interval), so an idle instance
// holds nothing.
//
// Calls that do not fit the reservation ask Redis synchronously (one round
// trip, which also renews the reservation). A rejection from Redis is reused
// locally until the next sync, so a saturated key costs at most about one
// round trip per sync interval per instance.
//
// # When Redis is unreachable
//
// Pending units are kept and retried; each sync carries a sequence number
// stored per instance in the key's meta hash, so a retry after a lost reply
// is never counted twice. Keys with local state keep deciding locally: they
// admit while the usage known at the last sync plus the units admitted since
// fit the capacity (expiries since the last sync are not credited, which
// errs on the side of rejecting). Keys without local state follow the
// failure policy. While Redis is down, N instances can admit up to N times
// the capacity between them; this is the documented bound, and it only
// applies during an outage.
//
// # Bounds
//
// With Redis reachable: over-admission 0. Reported Remaining values lag by up
// to one sync interval. Reserved-but-unspent units appear as usage to Get
// for up to one sync interval.
//
// Close flushes every pending unit and hands back every reservation, then
// stops the sync worker.
package hybrid
