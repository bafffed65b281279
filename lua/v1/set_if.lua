--! script   set_if
--! summary  Sets the key's live total to n and its rate when the total compares with n as asked; n = 0 deletes the key
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:<abs|sup>:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps and totals (<prefix>:v1:<abs|sup>:{<key>}:meta)
--! arg      window_ms          int     ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      hard_limit_factor  float   ratio    required  hard cap over soft cap, finite and >= 1 (1 for the absolute strategy)
--! arg      rate               float   units/s  required  the rate the key gets on a match; positive, finite, normal
--! arg      comparator         string  -        required  always, eq, ne, lt, le, gt or ge: the test "live total <comparator> n"
--! arg      n                  int     units    required  the new live total, 0 to 9007199254740991 (0 deletes the key)
--! arg      mode               string  -        required  replace (one fresh bucket), preserve_newest (raise the newest bucket, lower from the oldest) or preserve_oldest (raise the oldest, lower from the newest)
--! arg      now_ms             int     ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    matched   int  1 if the comparator matched and the key was set, else 0 (nothing written)
--! reply    previous  int  the live total before the call
--! reply    current   int  the live total after the call
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing, there are too many, or comparator, mode or now_ms is not valid
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_FACTOR  hard_limit_factor is not a finite decimal number >= 1
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_COUNT  n is not an integer in [0, 9007199254740991]
--! error    TRYPEMA_ZERO_CAPACITY  rate admits less than one unit over the window
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000 1 10 lt 5 preserve_newest

local usage = 'window_ms hard_limit_factor rate comparator n mode [now_ms]'

-- compare is the test "a <cmp> b".
local function compare(cmp, a, b)
  if cmp == 'always' then return true
  elseif cmp == 'eq' then return a == b
  elseif cmp == 'ne' then return a ~= b
  elseif cmp == 'lt' then return a < b
  elseif cmp == 'le' then return a <= b
  elseif cmp == 'gt' then return a > b
  end
  return a >= b
end

-- lower takes k units away (sliding.remove), from the oldest live buckets
-- when from_oldest, else from the newest; a thinned bucket keeps
-- floor(declined * kept / count) declines. It writes the list (the
-- expired buckets go too) and returns the newest call's time.
local function lower(st, k, from_oldest)
  local kb = st.kb
  local dropped = 0
  local ps, pl, pc, pd -- the thinned bucket, if any
  local after -- the last call of the first bucket kept whole
  local function visit(s, l, c, d)
    if k <= 0 then -- read before any write
      after = l
      return true
    end
    local take = math.min(k, c)
    local kept = c - take
    local declined = 0
    if kept > 0 then
      declined = math.floor(d * kept / c)
      declined = math.min(math.max(declined, 0), kept)
    end
    st.total = st.total - take
    st.declined = st.declined - (d - declined)
    k = k - take
    if kept == 0 then
      dropped = dropped + 1
      return false
    end
    ps, pl, pc, pd = s, l, kept, declined
    return true
  end
  -- The walks stop at a live bucket: some units stay.
  if from_oldest then
    walk(kb, st.k, 4, false, visit)
    redis.call('LTRIM', kb, string.format('%d', st.k + dropped), '-1')
    if ps then redis.call('LSET', kb, '0', string.format('%d:%d:%d:%d', ps, pl, pc, pd)) end
    return st.nl
  end
  walk(kb, -1, 4, true, visit)
  redis.call('LTRIM', kb, string.format('%d', st.k), string.format('%d', -1 - dropped))
  if ps then
    redis.call('LSET', kb, '-1', string.format('%d:%d:%d:%d', ps, pl, pc, pd))
    return pl
  end
  return after or st.nl
end

local function op(keys, args)
  local window = arg(args, 1, 'int', 1, 34560000000, usage)
  local hf = arg(args, 2, 'float', 1, math.huge, usage)
  local rate = arg(args, 3, 'float', 2.2250738585072014e-308, math.huge, usage)
  local cmp = arg(args, 4, 'word', ' always eq ne lt le gt ge ', nil, usage)
  local n = arg(args, 5, 'int', 0, 9007199254740991, usage)
  local mode = arg(args, 6, 'word', ' replace preserve_newest preserve_oldest ', nil, usage)
  local now = arg(args, 7, 'int', 0, 9007199254740991, usage, true)
  local soft, hard = caps(rate, window, hf)
  local st = load(keys, window, now, 'list')
  local cur = st.live and st.total or 0
  if not compare(cmp, cur, n) then return { 0, cur, cur } end
  local kb = st.kb
  if n == 0 then
    redis.call('DEL', kb, st.km)
    return { 1, cur, 0 }
  end
  local last
  if mode == 'replace' or not st.live then
    st.live, st.f = false, false
    prune(st)
    redis.call('RPUSH', kb, string.format('%d:%d:%d:%d', st.now, st.now, n, 0))
    st.total, st.declined, last = n, 0, st.now
  elseif n > cur then
    prune(st)
    if mode == 'preserve_oldest' then
      redis.call('LSET', kb, '0', string.format('%d:%d:%d:%d', st.os, st.ol, st.oc + (n - cur), st.od))
    else
      redis.call('LSET', kb, '-1', string.format('%d:%d:%d:%d', st.ns, st.nl, st.nc + (n - cur), st.nd))
    end
    st.total, last = n, st.nl
  elseif n < cur then
    last = lower(st, cur - n, mode == 'preserve_newest')
  else
    prune(st)
    last = st.nl
  end
  st.rate, st.soft, st.hard = rate, soft, hard
  rewrite(st, nil, nil, last)
  return { 1, cur, st.total }
end

return run(op, KEYS, ARGV, 7, usage)
