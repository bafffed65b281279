--! script   suppressed_get
--! summary  Suppressed strategy: a snapshot of the key's live state and factor, without recording anything
--! readonly true
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:sup:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps, totals and cached factor (<prefix>:v1:sup:{<key>}:meta)
--! arg      window_ms        int  ms  required  sliding window, 1 to 34560000000 (400 days)
--! arg      factor_cache_ms  int  ms  required  how long a computed suppression factor is reused, >= 1
--! arg      now_ms           int  ms  optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    exists    int    1 if the key has live usage, else 0 (and every other element is 0)
--! reply    total     int    the live units observed, declined ones included
--! reply    declined  int    the live units denied by suppression
--! reply    limit     int    the soft cap S
--! reply    hard      int    the hard cap H
--! reply    rate      float  the key's sticky rate in units per second; "0" for a key without live usage
--! reply    factor    float  the current suppression factor in [0, 1]
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or factor_cache_ms or now_ms is out of range
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:sup:{user_1}:buckets trypema:v1:sup:{user_1}:meta 10000 100

local usage = 'window_ms factor_cache_ms [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local cache_ms = arg(args, 2, 'int', 1, 9007199254740991, usage)
  local st = load(keys, window, arg(args, 3, 'int', 0, 9007199254740991, usage, true), 'all')
  if not st.live then return { 0, 0, 0, 0, 0, '0', '0' } end
  return { 1, st.total, st.declined, st.soft, st.hard, string.format('%.17g', st.rate),
    string.format('%.17g', factor(st, cache_ms, false)) }
end

return run(op, KEYS, ARGV, 3, usage)
