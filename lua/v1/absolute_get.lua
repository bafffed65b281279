--! script   absolute_get
--! summary  Absolute strategy: a snapshot of the key's live state, without recording anything
--! readonly true
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:abs:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:abs:{<key>}:meta)
--! arg      window_ms  int  ms  required  sliding window, 1 to 34560000000 (400 days)
--! arg      now_ms     int  ms  optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    exists    int    1 if the key has live usage, else 0 (and every other element is 0)
--! reply    total     int    the live units
--! reply    declined  int    always 0 for the absolute strategy
--! reply    limit     int    the capacity C
--! reply    hard      int    equal to limit for the absolute strategy
--! reply    rate      float  the key's sticky rate in units per second; "0" for a key without live usage
--! reply    factor    float  always "0" for the absolute strategy
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or now_ms is not an integer >= 0
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000

local usage = 'window_ms [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local st = load(keys, window, arg(args, 2, 'int', 0, 9007199254740991, usage, true), 'all')
  if not st.live then return { 0, 0, 0, 0, 0, '0', '0' } end
  return { 1, st.total, st.declined, st.soft, st.hard, string.format('%.17g', st.rate), '0' }
end

return run(op, KEYS, ARGV, 2, usage)
