--! script   suppressed_inc
--! summary  Suppressed strategy: records n units and decides them: allowed under the soft cap, else admitted with probability 1 - factor, never above the hard cap
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:sup:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps, totals and cached factor (<prefix>:v1:sup:{<key>}:meta)
--! arg      window_ms          int    ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      bucket_ms          int    ms       required  coalescing bucket size, 1 to window_ms
--! arg      hard_limit_factor  float  ratio    required  hard cap over soft cap, finite and >= 1
--! arg      factor_cache_ms    int    ms       required  how long a computed suppression factor is reused, >= 1
--! arg      rate               float  units/s  required  rate a key without live usage adopts (sticky afterwards); positive, finite, normal
--! arg      n                  int    units    required  units this call consumes, 1 to 9007199254740991
--! arg      u                  float  ratio    optional  uniform draw in [0, 1) deciding a probabilistic admission; absent or empty: the script draws one
--! arg      now_ms             int    ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    outcome    string  allowed (under the soft cap, factor 0) or suppressed (drawn against the factor)
--! reply    admitted   int     1 if the caller may proceed, else 0 (the units are recorded as declined)
--! reply    limit      int     the soft cap S
--! reply    remaining  int     allowed: S minus the accepted units after this call; suppressed: 0
--! reply    factor     float   the suppression factor applied, in [0, 1]; 1 when the hard cap would be exceeded
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or factor_cache_ms, u or now_ms is out of range
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_BUCKET  bucket_ms is not an integer in [1, window_ms]
--! error    TRYPEMA_FACTOR  hard_limit_factor is not a finite decimal number >= 1
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_COUNT  n is not an integer in [1, 9007199254740991]
--! error    TRYPEMA_ZERO_CAPACITY  the key has no live usage and rate admits less than one unit over the window
--! error    TRYPEMA_COUNT_EXCEEDS_CAPACITY  n is larger than the key's hard cap, so the call can never be admitted
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:sup:{user_1}:buckets trypema:v1:sup:{user_1}:meta 10000 100 1.5 100 10 1

local usage = 'window_ms bucket_ms hard_limit_factor factor_cache_ms rate n [u] [now_ms]'

-- draw returns a uniform draw in [0, 1) when the caller passed none. The
-- PRNG is seeded from the server's microseconds mixed with the key and its
-- state, since Redis may reset it for every script.
local function draw(st, n)
  local t = st.time or redis.call('TIME')
  local h = 0
  local s = st.kb
  for i = 1, #s do h = (h * 31 + string.byte(s, i)) % 2147483647 end
  math.randomseed((tonumber(t[2]) * 4099 + (tonumber(t[1]) % 65536) * 65599 + h
    + st.total % 1000003 + n % 7919) % 2147483647)
  math.random()
  return math.random()
end

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local bucket_ms = arg(args, 2, 'int', 1, window, usage)
  local hf = arg(args, 3, 'float', 1, math.huge, usage)
  local cache_ms = arg(args, 4, 'int', 1, 9007199254740991, usage)
  local rate = arg(args, 5, 'float', 2.2250738585072014e-308, math.huge, usage)
  local n = arg(args, 6, 'int', 1, 9007199254740991, usage)
  local u = arg(args, 7, 'float', 0, 1, usage, true)
  local st = load(keys, window, arg(args, 8, 'int', 0, 9007199254740991, usage, true), 'sup')
  if not st.live then
    caps(rate, st.window, hf, st, n, true)
  elseif n > st.hard then
    complain('exceeds', n, st.hard, st.rate, window, st.km)
  end
  local soft = st.soft
  local forecast = st.total - st.declined + n
  if forecast > st.hard then
    record(st, bucket_ms, n, n)
    return { 'suppressed', 0, soft, 0, '1' }
  end
  local f = factor(st, cache_ms, true)
  if f == 0 and forecast <= soft then
    record(st, bucket_ms, n, 0)
    return { 'allowed', 1, soft, soft - forecast, '0' }
  end
  if u == nil then u = draw(st, n) end
  if u < 1 - f then
    record(st, bucket_ms, n, 0)
    return { 'suppressed', 1, soft, 0, string.format('%.17g', f) }
  end
  record(st, bucket_ms, n, n)
  return { 'suppressed', 0, soft, 0, string.format('%.17g', f) }
end

return run(op, KEYS, ARGV, 8, usage)
