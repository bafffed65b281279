--! script   absolute_inc
--! summary  Absolute strategy: records n units if they fit in the key's capacity, else rejects them with the exact wait
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:abs:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:abs:{<key>}:meta)
--! arg      window_ms  int    ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      bucket_ms  int    ms       required  coalescing bucket size, 1 to window_ms
--! arg      rate       float  units/s  required  rate a key without live usage adopts (sticky afterwards); positive, finite, normal
--! arg      n          int    units    required  units this call consumes, 1 to 9007199254740991
--! arg      now_ms     int    ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    outcome                  string  allowed (recorded) or rejected (nothing recorded)
--! reply    limit                    int     the key's capacity C
--! reply    remaining                int     allowed: units left after this call; rejected: max(0, C - live units)
--! reply    retry_after_ms           int     rejected: the shortest wait after which expiries alone make room for n; allowed: 0
--! reply    remaining_after_waiting  int     rejected: the room after retry_after_ms (at least n); allowed: 0
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or now_ms is not an integer >= 0
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_BUCKET  bucket_ms is not an integer in [1, window_ms]
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_COUNT  n is not an integer in [1, 9007199254740991]
--! error    TRYPEMA_ZERO_CAPACITY  the key has no live usage and rate admits less than one unit over the window
--! error    TRYPEMA_COUNT_EXCEEDS_CAPACITY  n is larger than the key's capacity, so the call can never be admitted
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000 100 10 1

local usage = 'window_ms bucket_ms rate n [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local bucket_ms = arg(args, 2, 'int', 1, window, usage)
  local rate = arg(args, 3, 'float', 2.2250738585072014e-308, math.huge, usage)
  local n = arg(args, 4, 'int', 1, 9007199254740991, usage)
  local st = load(keys, window, arg(args, 5, 'int', 0, 9007199254740991, usage, true), 'abs')
  if not st.live then
    caps(rate, st.window, 1, st, n, false)
  elseif n > st.soft then
    complain('exceeds', n, st.soft, st.rate, window, st.km)
  end
  local c = st.soft
  if st.total + n > c then return rejection(st, n) end
  record(st, bucket_ms, n, 0)
  return { 'allowed', c, c - st.total, 0, 0 }
end

return run(op, KEYS, ARGV, 5, usage)
