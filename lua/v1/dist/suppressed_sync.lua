-- Trypema-Go, schema v1: the code shared by every script. Not a script on
-- its own: each standalone script is this file followed by one body from
-- lua/v1/<name>.lua, and the Functions library wraps each body in a
-- function. So this file defines locals only and never touches KEYS or
-- ARGV; the bodies pass them in.
--
-- The algorithm is internal/sliding's, operation for operation and in the
-- same floating-point order, so that Go and Lua agree bit for bit. Numbers
-- are Lua doubles: every integer handled here is at most 2^53 - 1 and thus
-- exact. Integers are written with %d and floats with %.17g (never with
-- tostring, which keeps only 14 digits).
--
-- A script first parses its arguments and reads the key's state, then
-- decides, and only then writes: bad input and impossible calls get an error
-- reply before anything is written. Read-only scripts never write; they
-- skip expired buckets in memory, as the write scripts do before trimming
-- them away.

local MAX_COUNT = 9007199254740991 -- 2^53 - 1
local MAX_WINDOW = 34560000000 -- 400 days in ms
local MIN_RATE = 2.2250738585072014e-308 -- the smallest normal double
local EPS = 1e-9 -- absorbs representation error in the capacity
local CHUNK = 128 -- the largest LRANGE of a bucket walk
local RECENT_MS = 1000 -- the look-back of the factor's short-term rate

-- Errors -------------------------------------------------------------------

-- fail raises an error that run turns into the reply "<code> <msg>".
local function fail(code, msg)
  error({ trypema = code .. ' ' .. msg }, 0)
end

-- show quotes a value for a message: at most 40 bytes, printable ASCII.
local function show(s)
  s = tostring(s)
  if #s > 40 then s = string.sub(s, 1, 40) .. '...' end
  return "'" .. (string.gsub(s, '[^%w%p ]', '?')) .. "'"
end

local function fmt_int(v) return string.format('%d', v) end
local function fmt_float(v) return string.format('%.17g', v) end

-- short_float formats v with the fewest digits that read back as v, in
-- exponent notation only for very small or large magnitudes (for messages;
-- replies and stored values use fmt_float).
local function short_float(v)
  local a = math.abs(v)
  local sci = a ~= 0 and (a < 1e-4 or a >= 1e21)
  for p = 1, 16 do
    local s = string.format('%.' .. p .. 'g', v)
    if tonumber(s) == v and (sci or not string.find(s, 'e')) then return s end
  end
  return fmt_float(v)
end

-- fmt_ms formats a duration the way the Go package does: 2d, 10s, 1500ms.
local function fmt_ms(ms)
  if ms % 86400000 == 0 then return fmt_int(ms / 86400000) .. 'd' end
  if ms % 1000 == 0 then return fmt_int(ms / 1000) .. 's' end
  return fmt_int(ms) .. 'ms'
end

-- Numbers --------------------------------------------------------------------

-- int_of returns the decimal integer s when it lies in [lo, hi], else nil.
local function int_of(s, lo, hi)
  if type(s) ~= 'string' or not string.find(s, '^%d+$') then return nil end
  local v = tonumber(s)
  if v == nil or v < lo or v > hi then return nil end
  return v
end

-- float_of returns the finite decimal number s (plain or exponent notation),
-- else nil. The pattern keeps out what Lua's tonumber would also accept:
-- hexadecimal, "inf", "nan" and surrounding spaces.
local function float_of(s)
  if type(s) ~= 'string' then return nil end
  local m = string.match(s, '^[+-]?([%d.]+)[eE][+-]?%d+$') or string.match(s, '^[+-]?([%d.]+)$')
  if not m or not string.find(m, '%d') or string.find(m, '%..*%.') then return nil end
  local v = tonumber(s)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then return nil end
  return v
end

-- Arguments ----------------------------------------------------------------

local COMPARATORS = {
  always = function() return true end,
  eq = function(a, b) return a == b end,
  ne = function(a, b) return a ~= b end,
  lt = function(a, b) return a < b end,
  le = function(a, b) return a <= b end,
  gt = function(a, b) return a > b end,
  ge = function(a, b) return a >= b end,
}
local MODES = { replace = true, preserve_newest = true, preserve_oldest = true }
local USAGES = { total = true, accepted = true }

-- CHECK parses one argument by kind; a holds the arguments parsed so far.
local CHECK = {
  window_ms = function(s)
    return int_of(s, 1, MAX_WINDOW) or fail('TRYPEMA_WINDOW', 'window_ms ' .. show(s)
      .. ' is not an integer in [1, 34560000000] (1 ms to 400 days); pass the window in milliseconds, for example 10000')
  end,
  bucket_ms = function(s, a)
    return int_of(s, 1, a.window_ms) or fail('TRYPEMA_BUCKET', 'bucket_ms ' .. show(s)
      .. ' is not an integer in [1, window_ms] = [1, ' .. fmt_int(a.window_ms)
      .. ']; pass a bucket size in milliseconds no larger than the window, for example 100')
  end,
  rate = function(s)
    local v = float_of(s)
    if v and v >= MIN_RATE then return v end
    return fail('TRYPEMA_RATE', 'rate ' .. show(s) .. ' is not a positive, finite decimal number of units per second'
      .. ' of at least 2.2250738585072014e-308 (the smallest normal double); pass for example 10 or 0.5')
  end,
  hard_limit_factor = function(s)
    local v = float_of(s)
    if v and v >= 1 then return v end
    return fail('TRYPEMA_FACTOR', 'hard_limit_factor ' .. show(s)
      .. ' is not a finite decimal number >= 1; pass 1 for no headroom above the rate, or for example 1.5')
  end,
  factor_cache_ms = function(s)
    return int_of(s, 1, MAX_COUNT) or fail('TRYPEMA_ARG', 'factor_cache_ms ' .. show(s)
      .. ' is not an integer in [1, 9007199254740991]; pass how long a suppression factor is reused, in ms, for example 100')
  end,
  count = function(s)
    local v = int_of(s, 1, MAX_COUNT)
    if v then return v end
    if int_of(s, 0, 0) then
      return fail('TRYPEMA_COUNT', 'n 0 consumes nothing; pass a count of at least 1,'
        .. ' or use the read-only scripts to ask without consuming')
    end
    return fail('TRYPEMA_COUNT', 'n ' .. show(s) .. ' is not an integer in [1, 9007199254740991]; pass the units this call consumes')
  end,
  target = function(s)
    return int_of(s, 0, MAX_COUNT) or fail('TRYPEMA_COUNT', 'n ' .. show(s)
      .. ' is not an integer in [0, 9007199254740991]; pass the new live total (0 deletes the key)')
  end,
  u = function(s)
    local v = float_of(s)
    if v and v >= 0 and v < 1 then return v end
    return fail('TRYPEMA_ARG', 'u ' .. show(s)
      .. ' is not a decimal number in [0, 1); pass a uniform draw, or the empty string to let the script draw one')
  end,
  now_ms = function(s)
    return int_of(s, 0, MAX_COUNT) or fail('TRYPEMA_ARG', 'now_ms ' .. show(s)
      .. ' is not an integer in [0, 9007199254740991]; pass Unix time in milliseconds, or the empty string to use the server time')
  end,
  comparator = function(s)
    if COMPARATORS[s] then return s end
    return fail('TRYPEMA_ARG', 'comparator ' .. show(s) .. ' is not one of always, eq, ne, lt, le, gt, ge')
  end,
  mode = function(s)
    if MODES[s] then return s end
    return fail('TRYPEMA_ARG', 'mode ' .. show(s) .. ' is not one of replace, preserve_newest, preserve_oldest')
  end,
  usage = function(s)
    if USAGES[s] then return s end
    return fail('TRYPEMA_ARG', 'usage ' .. show(s) .. ' is not one of total, accepted')
  end,
}

-- parse_args checks the key count and parses args by spec, a list of
-- "name", "name/kind" (kind defaults to the name) and, for optional
-- arguments, a trailing "?": "window_ms rate n/count now_ms?". An optional
-- argument may be absent or empty; it is then nil in the result.
local function parse_args(keys, args, spec)
  if #keys ~= 2 then
    fail('TRYPEMA_KEYS', fmt_int(#keys) .. ' keys given, expected exactly 2: the buckets LIST and the meta HASH'
      .. ' of one limited key, for example trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta')
  end
  local usage = string.gsub(string.gsub(spec, '/[%w_]+', ''), '([%w_]+)%?', '[%1]')
  local _, count = string.gsub(spec, '%S+', '')
  if #args > count then
    fail('TRYPEMA_ARG', fmt_int(#args) .. ' arguments given, at most ' .. count .. ' expected: ' .. usage)
  end
  local a, i = {}, 0
  for word in string.gmatch(spec, '%S+') do
    i = i + 1
    local name, kind, opt = string.match(word, '^([%w_]+)/?([%w_]*)(%??)$')
    local s = args[i]
    if s == nil or s == '' then
      if opt == '' then
        fail('TRYPEMA_ARG', 'argument ' .. i .. ' (' .. name .. ') is missing; the arguments are: ' .. usage)
      end
    else
      a[name] = CHECK[kind ~= '' and kind or name](s, a)
    end
  end
  return a
end

-- run parses the arguments and calls op(keys, a), turning the errors
-- raised by fail into error replies. Every body is one call of run.
local function run(keys, args, spec, op)
  local ok, res = pcall(function() return op(keys, parse_args(keys, args, spec)) end)
  if ok then return res end
  if type(res) == 'table' and res.trypema then return redis.error_reply(res.trypema) end
  error(res, 0)
end

-- Capacity -------------------------------------------------------------------

local function zero_capacity(rate, window)
  local head = 'rate ' .. short_float(rate) .. '/s over a window of ' .. fmt_ms(window) .. ' allows '
    .. short_float(rate * window / 1000) .. ' units, less than one'
  local need = math.ceil((1 - EPS) * 1000 / rate)
  if not (need <= MAX_WINDOW) then
    fail('TRYPEMA_ZERO_CAPACITY', head .. ', and even the longest window (400d) is too short; use a higher rate')
  end
  while need < MAX_WINDOW and math.floor(rate * need / 1000 + EPS) < 1 do need = need + 1 end
  fail('TRYPEMA_ZERO_CAPACITY', head .. '; use a window of at least ' .. fmt_ms(need)
    .. ' (window_ms ' .. fmt_int(need) .. ') or a higher rate')
end

-- caps returns the soft cap S (the absolute capacity C) and the hard cap H
-- of rate over window ms with hard-limit factor hf, exactly as
-- trypema.Capacity: x = (r * W) / 1000, S = floor(x + 1e-9),
-- H = max(floor(x * hf + 1e-9), S), both saturating at 2^53 - 1.
local function caps(rate, window, hf)
  local x = (rate * window) / 1000
  local soft = math.floor(x + EPS)
  if soft >= MAX_COUNT then soft = MAX_COUNT end
  if soft == 0 then zero_capacity(rate, window) end
  local hard = math.floor(x * hf + EPS)
  if hard >= MAX_COUNT then hard = MAX_COUNT end
  return soft, math.max(hard, soft)
end

local function count_exceeds(n, limit, rate, window)
  fail('TRYPEMA_COUNT_EXCEEDS_CAPACITY', 'a call of ' .. fmt_int(n)
    .. ' units can never be admitted by a key whose limit is ' .. fmt_int(limit) .. ' (rate ' .. short_float(rate)
    .. '/s over ' .. fmt_ms(window) .. '); split the call or raise the rate')
end

-- State ----------------------------------------------------------------------

local META_INTS = { nil, 'soft', 'hard', 'total', 'declined' }

local function corrupt(key, what, value)
  local got = ' is missing'
  if value then got = ' ' .. show(value) .. ' is not what these scripts write' end
  fail('TRYPEMA_CORRUPT', 'key ' .. show(key) .. ': ' .. what .. got
    .. '; delete both Redis keys of the limited key to start it over')
end

-- parse_bucket reads "start:last:count:declined".
local function parse_bucket(key, s)
  local a, b, c, d = string.match(s, '^(%d+):(%d+):(%d+):(%d+)$')
  if not a then corrupt(key, 'bucket', s) end
  return { start = tonumber(a), last = tonumber(b), count = tonumber(c), declined = tonumber(d) }
end

local function enc_bucket(b)
  return string.format('%d:%d:%d:%d', b.start, b.last, b.count, b.declined)
end

-- call_typed runs a read command, turning Redis' WRONGTYPE error into ours.
local function call_typed(key, want, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if string.find(r.err, '^WRONGTYPE') then
      fail('TRYPEMA_WRONGTYPE', 'key ' .. show(key) .. ' is a ' .. redis.call('TYPE', key).ok .. ', not a ' .. want
        .. '; it belongs to something else: check the key prefix, or delete it')
    end
    error(r, 0)
  end
  return r
end

-- walk visits the buckets at list indices lo..hi, forwards or backwards
-- (newest first), in LRANGE chunks that grow to CHUNK, until visit returns
-- true.
local function walk(key, lo, hi, backwards, visit)
  local size = 8
  while lo <= hi do
    local i, j = lo, math.min(hi, lo + size - 1)
    if backwards then i, j = math.max(lo, hi - size + 1), hi end
    local chunk = redis.call('LRANGE', key, i, j)
    if #chunk ~= j - i + 1 then
      fail('TRYPEMA_CORRUPT', 'key ' .. show(key) .. ' holds fewer buckets than its length said')
    end
    local from, to, step = 1, #chunk, 1
    if backwards then from, to, step = #chunk, 1, -1 end
    for x = from, to, step do
      if visit(parse_bucket(key, chunk[x])) then return end
    end
    if backwards then hi = i - 1 else lo = j + 1 end
    size = math.min(CHUNK, size * 4)
  end
end

-- load reads a key's state at now (nil: the server's TIME) with the
-- monotonic guard applied and expired buckets skipped. The result st has:
--   keys, window, now, len (list length), time (TIME's reply, if read),
--   dirty (either Redis key holds something), live (a bucket is live);
-- and when live: k (the expired buckets at the list's head), oldest and
-- newest (the live ends), rate, soft, hard, total and declined (of the
-- live buckets), and f, f_at, f_head (the factor cache) when stored.
local function load(keys, window, now)
  local kb, km = keys[1], keys[2]
  local len = call_typed(kb, 'list', 'LLEN', kb)
  local m = call_typed(km, 'hash', 'HMGET', km, 'rate', 'soft', 'hard', 'total', 'declined', 'f', 'f_at', 'f_head')
  local st = { keys = keys, window = window, len = len, live = false, k = 0 }
  if now == nil then
    st.time = redis.call('TIME')
    now = tonumber(st.time[1]) * 1000 + math.floor(tonumber(st.time[2]) / 1000)
  end
  st.now = now
  for i = 1, 8 do
    if m[i] then st.dirty = true end
  end
  if len == 0 then return st end
  st.dirty = true
  local newest = parse_bucket(kb, redis.call('LINDEX', kb, -1))
  if now < newest.last then
    now = newest.last
    st.now = now
  end
  -- Buckets end in order of their last calls: when the newest has left
  -- the window, so has everything, and the key is unknown.
  if now - newest.last >= window then return st end

  local rate = float_of(m[1])
  if not rate or rate < MIN_RATE then corrupt(km, 'field rate', m[1]) end
  local nums = {}
  for i = 2, 5 do
    -- total and declined may exceed 2^53 - 1: every suppressed call is
    -- counted, declined ones included.
    nums[i] = int_of(m[i], 0, i < 4 and MAX_COUNT or math.huge)
    if not nums[i] then corrupt(km, 'field ' .. META_INTS[i], m[i]) end
  end
  st.rate, st.soft, st.hard, st.total, st.declined = rate, nums[2], nums[3], nums[4], nums[5]
  if m[6] or m[7] or m[8] then
    st.f, st.f_at, st.f_head = float_of(m[6]), int_of(m[7], 0, MAX_COUNT), int_of(m[8], 0, MAX_COUNT)
    if not (st.f and st.f >= 0 and st.f <= 1 and st.f_at and st.f_head) then
      corrupt(km, 'the factor cache (fields f, f_at, f_head)', (m[6] or '') .. ',' .. (m[7] or '') .. ',' .. (m[8] or ''))
    end
    st.has_f = true
  end

  local oldest = newest
  if len > 1 then oldest = parse_bucket(kb, redis.call('LINDEX', kb, 0)) end
  local k = 0
  local function expire(b)
    if now - b.last < window then
      oldest = b
      return true
    end
    k = k + 1
    st.total = st.total - b.count
    st.declined = st.declined - b.declined
    return false
  end
  if not expire(oldest) then
    walk(kb, 1, len - 2, false, expire)
    if k == len - 1 then oldest = newest end
  end
  st.k, st.oldest, st.newest, st.live = k, oldest, newest, true
  return st
end

-- adopt gives a key without live state the rate's caps, checking that a
-- call of n units could ever be admitted (n <= limit(soft, hard)).
local function adopt(st, rate, hf, n, limit)
  local soft, hard = caps(rate, st.window, hf)
  if n > limit(soft, hard) then count_exceeds(n, limit(soft, hard), rate, st.window) end
  st.rate, st.soft, st.hard, st.total, st.declined = rate, soft, hard, 0, 0
end

-- record adds n units (d of them declined) at now to the state in memory,
-- joining the newest bucket when now is less than bucket_ms after its
-- start; save_record writes it.
local function record(st, bucket_ms, n, d)
  local b = st.live and st.newest
  if b and st.now - b.start < bucket_ms then
    b.count, b.declined, b.last = b.count + n, b.declined + d, st.now
    st.joined = true
  else
    b = { start = st.now, last = st.now, count = n, declined = d }
    st.newest = b
    if not st.live then st.oldest = b end
  end
  st.total, st.declined = st.total + n, st.declined + d
end

-- Writing ------------------------------------------------------------------

-- prune drops the expired buckets, or everything when the key has no live
-- state (its sticky rate is forgotten).
local function prune(st)
  if not st.live then
    if st.dirty then redis.call('DEL', st.keys[1], st.keys[2]) end
  elseif st.k > 0 then
    redis.call('LTRIM', st.keys[1], st.k, -1)
  end
end

-- put_meta writes the rate, caps and totals; with factor, the new factor
-- cache, and with clear, it drops the cache.
local function put_meta(st, factor, clear)
  local km = st.keys[2]
  if factor then
    redis.call('HSET', km, 'rate', fmt_float(st.rate), 'soft', fmt_int(st.soft), 'hard', fmt_int(st.hard),
      'total', fmt_int(st.total), 'declined', fmt_int(st.declined),
      'f', fmt_float(st.f), 'f_at', fmt_int(st.f_at), 'f_head', fmt_int(st.f_head))
  else
    redis.call('HSET', km, 'rate', fmt_float(st.rate), 'soft', fmt_int(st.soft), 'hard', fmt_int(st.hard),
      'total', fmt_int(st.total), 'declined', fmt_int(st.declined))
  end
  if clear and st.has_f then redis.call('HDEL', km, 'f', 'f_at', 'f_head') end
end

-- expire_at sets both keys' TTL to the time until the newest call, made at
-- last, leaves the window. The buckets go first: the meta's expiry, taken
-- from a later clock reading, is never the earlier one, so no script can
-- find live buckets without their meta.
local function expire_at(st, last)
  local ttl = fmt_int(math.max(1, st.window - (st.now - last)))
  redis.call('PEXPIRE', st.keys[1], ttl)
  redis.call('PEXPIRE', st.keys[2], ttl)
end

-- save_record writes what record did.
local function save_record(st)
  prune(st)
  if st.joined then
    redis.call('LSET', st.keys[1], -1, enc_bucket(st.newest))
  else
    redis.call('RPUSH', st.keys[1], enc_bucket(st.newest))
  end
  put_meta(st, st.f_new, false)
  expire_at(st, st.newest.last)
end

-- Absolute -----------------------------------------------------------------

-- rejection is the Rejected reply for n units: the exact wait until
-- expiries alone make room, found by walking from the oldest bucket.
local function rejection(st, n)
  local c, total = st.soft, st.total
  local freed, retry = 0, 0
  walk(st.keys[1], st.k, st.len - 1, false, function(b)
    freed = freed + b.count
    if total - freed + n <= c then
      retry = st.window - (st.now - b.last)
      return true
    end
  end)
  return { 'rejected', c, math.max(0, c - total), retry, c - (total - freed) }
end

local function soft_of(soft) return soft end
local function hard_of(_, hard) return hard end

local function op_absolute_inc(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  local n = a.n
  if not st.live then
    adopt(st, a.rate, 1, n, soft_of)
  elseif n > st.soft then
    count_exceeds(n, st.soft, st.rate, st.window)
  end
  local c = st.soft
  if st.total + n > c then return rejection(st, n) end
  record(st, a.bucket_ms, n, 0)
  save_record(st)
  return { 'allowed', c, c - st.total, 0, 0 }
end

local function op_absolute_is_allowed(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  if not st.live then return { 'allowed', 0, 0, 0, 0 } end
  if st.total < st.soft then return { 'allowed', st.soft, st.soft - st.total, 0, 0 } end
  return rejection(st, 1)
end

-- Suppressed ---------------------------------------------------------------

-- compute_factor is the rate-based factor (sliding.computeFactor):
-- clamp(1 - (S / W_s) / perceived, 0, 1), perceived being the units of the
-- buckets whose last call is under RECENT_MS old, or once accepted usage
-- reaches S the larger of that and total / W_s.
local function compute_factor(st)
  local accepted = st.total - st.declined
  local ws = st.window / 1000
  local recent = 0
  if st.now - st.newest.last < RECENT_MS then
    walk(st.keys[1], st.k, st.len - 1, true, function(b)
      if st.now - b.last >= RECENT_MS then return true end
      recent = recent + b.count
    end)
  end
  local perceived = recent
  if accepted >= st.soft then perceived = math.max(perceived, st.total / ws) end
  if perceived <= 0 then return 0 end
  local f = 1 - (st.soft / ws) / perceived
  return math.min(math.max(f, 0), 1)
end

-- factor is the suppression factor (sliding.currentFactor): the bounds,
-- then the cache while it is fresh and its oldest bucket still live, else a
-- new value, kept in st for save_record when store is set.
local function factor(st, cache_ms, store)
  if not st.live or st.total < st.soft then return 0 end
  if st.total - st.declined >= st.hard then return 1 end
  if st.f and st.now - st.f_at < cache_ms and st.oldest.start == st.f_head then return st.f end
  local f = compute_factor(st)
  if store then st.f, st.f_at, st.f_head, st.f_new = f, st.now, st.oldest.start, true end
  return f
end

-- draw returns a uniform draw in [0, 1) when the caller passed none. The
-- PRNG is seeded from the server's microseconds mixed with the key and its
-- state, since Redis may reset it for every script.
local function draw(st, n)
  local t = st.time or redis.call('TIME')
  local h = 0
  local s = st.keys[1]
  for i = 1, #s do h = (h * 31 + string.byte(s, i)) % 2147483647 end
  math.randomseed((tonumber(t[2]) * 4099 + (tonumber(t[1]) % 65536) * 65599 + h
    + st.total % 1000003 + n % 7919) % 2147483647)
  math.random()
  return math.random()
end

local function op_suppressed_inc(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  local n = a.n
  if not st.live then
    adopt(st, a.rate, a.hard_limit_factor, n, hard_of)
  elseif n > st.hard then
    count_exceeds(n, st.hard, st.rate, st.window)
  end
  local forecast = st.total - st.declined + n
  local reply
  if forecast > st.hard then
    record(st, a.bucket_ms, n, n)
    reply = { 'suppressed', 0, st.soft, 0, '1' }
  else
    local f = factor(st, a.factor_cache_ms, true)
    if f == 0 and forecast <= st.soft then
      record(st, a.bucket_ms, n, 0)
      reply = { 'allowed', 1, st.soft, st.soft - forecast, '0' }
    else
      local u = a.u or draw(st, n)
      local admitted = u < 1 - f
      record(st, a.bucket_ms, n, admitted and 0 or n)
      reply = { 'suppressed', admitted and 1 or 0, st.soft, 0, fmt_float(f) }
    end
  end
  save_record(st)
  return reply
end

local function op_suppressed_factor(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  return { fmt_float(factor(st, a.factor_cache_ms, false)) }
end

-- Snapshot, rate, conditional set, delete ------------------------------------

-- snapshot is Get; cache_ms is nil for the absolute strategy (factor 0).
local function snapshot(st, cache_ms)
  if not st.live then return { 0, 0, 0, 0, 0, '0', '0' } end
  local f = 0
  if cache_ms then f = factor(st, cache_ms, false) end
  return { 1, st.total, st.declined, st.soft, st.hard, fmt_float(st.rate), fmt_float(f) }
end

local function op_absolute_get(keys, a)
  return snapshot(load(keys, a.window_ms, a.now_ms), nil)
end

local function op_suppressed_get(keys, a)
  return snapshot(load(keys, a.window_ms, a.now_ms), a.factor_cache_ms)
end

local function op_set_rate_limit(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  if not st.live then return { 0, '0' } end
  local soft, hard = caps(a.rate, st.window, a.hard_limit_factor)
  local prev = st.rate
  if a.rate ~= prev then
    st.rate, st.soft, st.hard = a.rate, soft, hard
    prune(st)
    put_meta(st, false, true)
    expire_at(st, st.newest.last)
  end
  return { 1, fmt_float(prev) }
end

-- lower takes k units away (sliding.remove), from the oldest buckets when
-- from_oldest, else from the newest; a thinned bucket keeps
-- floor(declined * kept / count) declines. It writes the list and returns
-- the newest call's time.
local function lower(st, k, from_oldest)
  local kb = st.keys[1]
  local dropped, partial, after = 0, nil, nil
  walk(kb, st.k, st.len - 1, not from_oldest, function(b)
    if k <= 0 then -- the first bucket kept whole: read before any write
      after = b
      return true
    end
    local take = math.min(k, b.count)
    local kept = b.count - take
    local declined = 0
    if kept > 0 then
      declined = math.floor(b.declined * kept / b.count)
      declined = math.min(math.max(declined, 0), kept)
    end
    st.total = st.total - take
    st.declined = st.declined - (b.declined - declined)
    k = k - take
    if kept == 0 then
      dropped = dropped + 1
    else
      b.count, b.declined = kept, declined
      partial = b
      return true
    end
    return false
  end)
  if from_oldest then
    redis.call('LTRIM', kb, st.k + dropped, -1)
    if partial then redis.call('LSET', kb, 0, enc_bucket(partial)) end
    return st.newest.last
  end
  redis.call('LTRIM', kb, st.k, st.len - 1 - dropped)
  if partial then
    redis.call('LSET', kb, -1, enc_bucket(partial))
    return partial.last
  end
  return (after or st.newest).last
end

local function op_set_if(keys, a)
  local soft, hard = caps(a.rate, a.window_ms, a.hard_limit_factor)
  local st = load(keys, a.window_ms, a.now_ms)
  local n = a.n
  local cur = st.live and st.total or 0
  if not COMPARATORS[a.comparator](cur, n) then return { 0, cur, cur } end
  local kb = keys[1]
  if n == 0 then
    redis.call('DEL', kb, keys[2])
    return { 1, cur, 0 }
  end
  local last
  if a.mode == 'replace' or not st.live then
    st.live, st.has_f = false, false
    prune(st)
    redis.call('RPUSH', kb, enc_bucket({ start = st.now, last = st.now, count = n, declined = 0 }))
    st.total, st.declined, last = n, 0, st.now
  elseif n > cur then
    prune(st)
    local b, at = st.newest, -1
    if a.mode == 'preserve_oldest' then b, at = st.oldest, 0 end
    b.count = b.count + (n - cur)
    redis.call('LSET', kb, at, enc_bucket(b))
    st.total, last = n, st.newest.last
  elseif n < cur then
    last = lower(st, cur - n, a.mode == 'preserve_newest')
  else
    prune(st)
    last = st.newest.last
  end
  st.rate, st.soft, st.hard = a.rate, soft, hard
  put_meta(st, false, true)
  expire_at(st, last)
  return { 1, cur, st.total }
end

local function op_delete(keys, a)
  local st = load(keys, a.window_ms, a.now_ms)
  local usage = 0
  if st.live then
    usage = st.total
    if a.usage == 'accepted' then usage = st.total - st.declined end
  end
  redis.call('DEL', keys[1], keys[2])
  return { st.live and 1 or 0, usage }
end

-- Hybrid sync -----------------------------------------------------------------
--
-- A hybrid instance admits locally only units it has reserved here. A
-- reservation is ordinary usage recorded at the time it is granted, and the
-- meta field h:<instance> remembers it ("units:start of its bucket"). A sync
-- hands the reservation back, records the calls the instance admitted with
-- the times they happened (never before the newest call: the monotonic
-- guard), decides need units exactly as the inc scripts would, and grants a
-- new reservation. Every admitted unit is thus counted from before it was
-- admitted until a window after it happened. q:<instance> holds the last
-- applied sequence number, so a retry after a lost reply counts once.

CHECK.instance = function(s)
  if #s <= 64 and string.find(s, '^[%w_.-]+$') then return s end
  return fail('TRYPEMA_ARG', 'instance ' .. show(s) .. ' is not 1 to 64 letters, digits, _, - or .')
end

-- pending parses "last:count" (absolute) or "last:count:declined"
-- (suppressed) items separated by commas, checking every number.
local function parse_pending(s, suppressed)
  local items = {}
  if s == nil or s == '' then return items end
  local pattern = suppressed and '^(%d+):(%d+):(%d+)$' or '^(%d+):(%d+)$'
  for item in string.gmatch(s, '[^,]+') do
    local l, c, d = string.match(item, pattern)
    local last, count, declined = tonumber(l), tonumber(c), tonumber(d or '0')
    if not last or last > MAX_COUNT or count > MAX_COUNT or count < 1 or declined > count then
      fail('TRYPEMA_ARG', 'pending item ' .. show(item) .. ' is not '
        .. (suppressed and 'last:count:declined' or 'last:count') .. ' with 1 <= count <= 9007199254740991'
        .. (suppressed and ' and declined <= count' or ''))
    end
    items[#items + 1] = { last = last, count = count, declined = declined }
  end
  return items
end
CHECK.pending = function(s) return s end -- parsed by op_sync, which knows the strategy

-- release hands back the instance's reservation: its units leave the bucket
-- that holds them (a bucket left empty is removed).
local function release(keys, a, inst_field)
  local km, kb = keys[2], keys[1]
  local held = redis.call('HGET', km, inst_field)
  if not held then return end
  redis.call('HDEL', km, inst_field)
  local units, start = string.match(held, '^(%d+):(%d+)$')
  units, start = tonumber(units), tonumber(start)
  if not units then corrupt(km, 'field ' .. inst_field, held) end
  local st = load(keys, a.window_ms, a.now_ms)
  if not st.live then return end
  local i, found = st.len, nil
  walk(kb, st.k, st.len - 1, true, function(b)
    i = i - 1
    if b.start == start then found = b return true end
    return b.start < start
  end)
  if not found then return end
  local take = math.min(units, found.count - found.declined)
  if take <= 0 then return end
  prune(st)
  st.total = st.total - take
  if take == found.count then
    redis.call('LREM', kb, 1, enc_bucket(found))
    if st.total == 0 and st.len - st.k == 1 then
      redis.call('DEL', kb, km)
      return
    end
  else
    found.count = found.count - take
    redis.call('LSET', kb, i - st.k, enc_bucket(found))
  end
  redis.call('HSET', km, 'total', fmt_int(st.total))
end

-- op_sync builds the sync op of the absolute or suppressed strategy.
local function op_sync(suppressed)
  return function(keys, a)
    local hf = suppressed and a.hard_limit_factor or 1
    local items = parse_pending(a.pending, suppressed)
    local km = keys[2]
    local now = a.now_ms
    if now == nil then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      a.now_ms = now
    end
    -- A key without live state adopts the call's rate: its capacity must be
    -- checked before anything is written. A live key keeps its sticky rate.
    if not load(keys, a.window_ms, now).live then caps(a.rate, a.window_ms, hf) end
    local q = call_typed(km, 'hash', 'HGET', km, 'q:' .. a.instance)
    local fresh = not q or a.seq > tonumber(q)
    release(keys, a, 'h:' .. a.instance)
    if fresh then
      for _, p in ipairs(items) do
        local st = load(keys, a.window_ms, math.min(p.last, now))
        if not st.live then adopt(st, a.rate, hf, 0, function(s) return s end) end
        record(st, a.bucket_ms, p.count, p.declined)
        save_record(st)
      end
    end

    local st = load(keys, a.window_ms, now)
    local need, outcome, reply = a.need, 'none', nil
    if not st.live then
      if need == 0 and a.want == 0 then
        if #items > 0 and fresh then redis.call('HSET', km, 'q:' .. a.instance, fmt_int(a.seq)) end
        if suppressed then return { 'none', 0, 0, 0, '0', 0, 0, 0 } end
        return { 'none', 0, 0, 0, 0, 0, 0 }
      end
      adopt(st, a.rate, hf, need, suppressed and hard_of or soft_of)
    elseif need > (suppressed and st.hard or st.soft) then
      count_exceeds(need, suppressed and st.hard or st.soft, st.rate, st.window)
    end
    -- Decide need first (on the state before this call, as the inc scripts
    -- do), then record need and the new reservation in one bucket update.
    local f, add, add_declined = 0, 0, 0
    if suppressed then
      local forecast = st.total - st.declined + need
      if need > 0 and forecast > st.hard then
        reply, f, add, add_declined = { 'suppressed', 0, st.soft, 0 }, 1, need, need
      elseif need > 0 then
        f = factor(st, a.factor_cache_ms, true)
        if f == 0 and forecast <= st.soft then
          reply, add = { 'allowed', 1, st.soft, st.soft - forecast }, need
        else
          local admitted = a.u < 1 - f
          reply, add = { 'suppressed', admitted and 1 or 0, st.soft, 0 }, need
          if not admitted then add_declined = need end
        end
      else
        f = factor(st, a.factor_cache_ms, false)
      end
    elseif need > 0 then
      if st.total + need > st.soft then
        reply = rejection(st, need)
      else
        outcome, add = 'allowed', need
      end
    end
    -- The new reservation: absolute up to the capacity, suppressed (accepted
    -- units) up to the hard cap, and none after a rejection.
    local room
    if suppressed then
      room = st.hard - (st.total - st.declined) - (add - add_declined)
    else
      room = st.soft - st.total - add
    end
    local grant = 0
    if not (reply and reply[1] == 'rejected') then grant = math.max(0, math.min(a.want, room)) end
    if add + grant > 0 then
      record(st, a.bucket_ms, add + grant, add_declined)
      save_record(st)
    end
    if grant > 0 then redis.call('HSET', km, 'h:' .. a.instance, fmt_int(grant) .. ':' .. fmt_int(st.newest.start)) end
    if #items > 0 and fresh then redis.call('HSET', km, 'q:' .. a.instance, fmt_int(a.seq)) end
    if suppressed then
      reply = reply or { 'none', 0, st.soft, 0 }
      return { reply[1], reply[2], reply[3], reply[4], fmt_float(f), grant, st.hard, st.total - st.declined }
    end
    if reply then
      return { 'rejected', 0, reply[2], reply[3], reply[4], reply[5], st.total }
    end
    return { outcome, grant, st.soft, st.soft - st.total, 0, 0, st.total }
  end
end

--! script   suppressed_sync
--! summary  Hybrid provider, suppressed strategy: commits an instance's local calls, hands back its reservation, decides need units and reserves up to want more accepted units
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:sup:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps, totals, cached factor, and per instance its reservation (h:<instance>) and last sequence number (q:<instance>)
--! arg      window_ms          int     ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      bucket_ms          int     ms       required  coalescing bucket size, 1 to window_ms
--! arg      hard_limit_factor  float   ratio    required  hard cap over soft cap, finite and >= 1
--! arg      factor_cache_ms    int     ms       required  how long a computed suppression factor is reused, >= 1
--! arg      rate               float   units/s  required  rate a key without live usage adopts (sticky afterwards); positive, finite, normal
--! arg      instance           string  -        required  the calling instance's id: 1 to 64 letters, digits, '_', '-' or '.'
--! arg      seq                int     -        required  sequence number of pending: a pending list already applied under a number >= seq is skipped, so a retry after a lost reply counts once
--! arg      need               int     units    required  units to decide now (0: none), recorded at now
--! arg      u                  float   ratio    required  uniform draw in [0, 1) deciding a probabilistic admission of need
--! arg      want               int     units    required  accepted units to reserve for this instance after the call (granted up to the hard cap)
--! arg      pending            string  -        optional  the instance's local calls, "last:count:declined" triples separated by commas, oldest first ("" for none)
--! arg      now_ms             int     ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    outcome    string  allowed or suppressed (the decision for need, as suppressed_inc), or none when need is 0
--! reply    admitted   int     1 if need was admitted, else 0
--! reply    limit      int     the soft cap S
--! reply    remaining  int     allowed: S minus the accepted units after this call; else 0
--! reply    factor     float   the suppression factor at now, in [0, 1]
--! reply    granted    int     accepted units now reserved for this instance
--! reply    hard       int     the hard cap H
--! reply    accepted   int     the accepted units after the call, reservations included
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing or out of range, or pending is malformed
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_BUCKET  bucket_ms is not an integer in [1, window_ms]
--! error    TRYPEMA_FACTOR  hard_limit_factor is not a finite decimal number >= 1
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_ZERO_CAPACITY  rate admits less than one unit over the window
--! error    TRYPEMA_COUNT_EXCEEDS_CAPACITY  need is larger than the key's hard cap
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:sup:{user_1}:buckets trypema:v1:sup:{user_1}:meta 10000 100 1.5 100 10 inst_1 1 1 0.5 4 "" 1000000
return run(KEYS, ARGV, 'window_ms bucket_ms hard_limit_factor factor_cache_ms rate instance seq/target need/target u want/target pending? now_ms?', op_sync(true))
