--! script   delete
--! summary  Deletes the key's state and returns its live usage before the deletion
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:<abs|sup>:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:<abs|sup>:{<key>}:meta)
--! arg      window_ms  int     ms  required  sliding window, 1 to 34560000000 (400 days)
--! arg      usage      string  -   required  total (the absolute strategy's live units) or accepted (the suppressed strategy's live units minus declined ones)
--! arg      now_ms     int     ms  optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    existed  int  1 if the key had live usage, else 0
--! reply    usage    int  the live usage before the deletion, as chosen by the usage argument; 0 if the key had none
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or usage or now_ms is not valid
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type (nothing is deleted)
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts (nothing is deleted)
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000 total

local usage = 'window_ms usage [now_ms]'

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local which = arg(args, 2, 'word', ' total accepted ', nil, usage)
  local st = load(keys, window, arg(args, 3, 'int', 0, 9007199254740991, usage, true), 'list')
  local used = 0
  if st.live then
    used = st.total
    if which == 'accepted' then used = st.total - st.declined end
  end
  redis.call('DEL', st.kb, st.km)
  return { st.live and 1 or 0, used }
end

return run(op, KEYS, ARGV, 3, usage)
