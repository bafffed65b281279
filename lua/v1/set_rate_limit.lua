--! script   set_rate_limit
--! summary  Replaces the sticky rate of a key with live usage, keeping its history; an equal rate or a key without live usage writes nothing
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:<abs|sup>:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:<abs|sup>:{<key>}:meta)
--! arg      window_ms          int    ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      hard_limit_factor  float  ratio    required  hard cap over soft cap, finite and >= 1 (1 for the absolute strategy)
--! arg      rate               float  units/s  required  the new rate; positive, finite, normal
--! arg      now_ms             int    ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    existed        int    1 if the key had live usage (and now has the rate), else 0 (nothing written)
--! reply    previous_rate  float  the rate before the call in units per second; "0" if the key had no live usage
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or now_ms is not an integer >= 0
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_FACTOR  hard_limit_factor is not a finite decimal number >= 1
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_ZERO_CAPACITY  the key has live usage and rate admits less than one unit over the window
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000 1 20

local usage = 'window_ms hard_limit_factor rate [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local hf = arg(args, 2, 'float', 1, math.huge, usage)
  local rate = arg(args, 3, 'float', 2.2250738585072014e-308, math.huge, usage)
  local st = load(keys, window, arg(args, 4, 'int', 0, 9007199254740991, usage, true), 'list')
  if not st.live then return { 0, '0' } end
  local soft, hard = caps(rate, window, hf)
  local prev = st.rate
  if rate ~= prev then
    st.rate, st.soft, st.hard = rate, soft, hard
    prune(st)
    rewrite(st, st.tail, st.head, st.nl)
  end
  return { 1, string.format('%.17g', prev) }
end

return run(op, KEYS, ARGV, 4, usage)
