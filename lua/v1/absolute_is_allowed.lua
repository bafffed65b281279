--! script   absolute_is_allowed
--! summary  Absolute strategy: whether one more unit would be admitted now, without recording anything
--! readonly true
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:abs:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:abs:{<key>}:meta)
--! arg      window_ms  int  ms  required  sliding window, 1 to 34560000000 (400 days)
--! arg      now_ms     int  ms  optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    outcome                  string  allowed or rejected
--! reply    limit                    int     the key's capacity C; 0 for a key without live usage
--! reply    remaining                int     allowed: C - live units (0 for a key without live usage); rejected: max(0, C - live units)
--! reply    retry_after_ms           int     rejected: the shortest wait after which expiries alone make room for one unit; allowed: 0
--! reply    remaining_after_waiting  int     rejected: the room after retry_after_ms; allowed: 0
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or now_ms is not an integer >= 0
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000

local usage = 'window_ms [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local st = load(keys, window, arg(args, 2, 'int', 0, 9007199254740991, usage, true), 'abs')
  if not st.live then return { 'allowed', 0, 0, 0, 0 } end
  if st.total < st.soft then return { 'allowed', st.soft, st.soft - st.total, 0, 0 } end
  return rejection(st, 1)
end

return run(op, KEYS, ARGV, 2, usage)
