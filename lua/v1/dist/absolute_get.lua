-- Trypema-Go, schema v1: the code shared by every script. Not a script on
-- its own: each standalone script is this file followed by one body from
-- lua/v1/<name>.lua, and the Functions library wraps each body in a
-- function. So this file defines locals only and never touches KEYS or
-- ARGV; the bodies pass them in.
--
-- The algorithm is internal/sliding's, operation for operation and in the
-- same floating-point order, so that Go and Lua agree bit for bit. Numbers
-- are Lua doubles: every integer handled here is at most 2^53 - 1 and thus
-- exact. Integers go to Redis through %d and floats through %.17g (never
-- through tostring, which keeps only 14 digits).
--
-- A script first parses its arguments and reads the key's state, then
-- decides, and only then writes: bad input and impossible calls get an error
-- reply before anything is written. Read-only scripts never write; they
-- skip expired buckets in memory, as the write scripts do before trimming
-- them away.
--
-- Cost. On a steady key a call costs the EVALSHA itself, about a
-- microsecond per Redis command, and the Lua around them; this code keeps
-- both down:
--
--   * EVALSHA runs this whole file before the body on every call, so
--     everything at its top level is paid every time. It only defines the
--     few functions that several scripts share: one closure each, no tables
--     of closures, constants written in place. A function that one script
--     needs lives in that script's body.
--   * Every error message is built inside complain, which only failing
--     calls reach: its helpers and strings cost nothing otherwise.
--   * Each body parses its own arguments with arg: tonumber and one
--     anchored pattern each, no spec strings.
--   * A key is read with one HMGET of the meta fields the script needs,
--     the list's two ends included (mirrored there: see State); buckets in
--     between are read only when one has expired, or by the rarer walks
--     (rejection, a fresh suppression factor, set_if), in LRANGE chunks.
--   * A write sends only what changed: the newest bucket (LSET or RPUSH),
--     the meta fields that moved (one HSET), and both TTLs. A call that
--     joins the newest bucket is HMGET, LSET, HSET and two PEXPIREs.
--   * Buckets are kept as plain numbers (locals, or fields of the one state
--     table load builds), never as a table each.

-- Errors -------------------------------------------------------------------

-- complain raises the error reply of a problem: run turns the error into
-- the reply "<code> <message>". what names the problem; a to e are its
-- details (see each branch).
local function complain(what, a, b, c, d, e)
  local fmt_int = function(v) return string.format('%d', v) end
  -- show quotes a value for a message: at most 40 bytes, printable ASCII.
  local show = function(s)
    s = tostring(s)
    if #s > 40 then s = string.sub(s, 1, 40) .. '...' end
    return "'" .. (string.gsub(s, '[^%w%p ]', '?')) .. "'"
  end
  -- short_float formats v with the fewest digits that read back as v, in
  -- exponent notation only for very small or large magnitudes.
  local short_float = function(v)
    local x = math.abs(v)
    local sci = x ~= 0 and (x < 1e-4 or x >= 1e21)
    for p = 1, 16 do
      local s = string.format('%.' .. p .. 'g', v)
      if tonumber(s) == v and (sci or not string.find(s, 'e')) then return s end
    end
    return string.format('%.17g', v)
  end
  -- fmt_ms formats a duration the way the Go package does: 2d, 10s, 1500ms.
  local fmt_ms = function(ms)
    if ms % 86400000 == 0 then return fmt_int(ms / 86400000) .. 'd' end
    if ms % 1000 == 0 then return fmt_int(ms / 1000) .. 's' end
    return fmt_int(ms) .. 'ms'
  end
  -- name returns the i-th argument's name from a usage line.
  local name = function(usage, i)
    local j = 0
    for word in string.gmatch(usage, '%S+') do
      j = j + 1
      if j == i then return (string.gsub(word, '[%[%]]', '')) end
    end
  end

  local code, msg
  if what == 'keys' then -- a: the number of keys
    code, msg = 'TRYPEMA_KEYS', fmt_int(a) .. ' keys given, expected exactly 2: the buckets LIST and the meta HASH'
      .. ' of one limited key, for example trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta'
  elseif what == 'args' then -- a: arguments given, b: at most, c: usage
    code, msg = 'TRYPEMA_ARG', fmt_int(a) .. ' arguments given, at most ' .. b .. ' expected: ' .. c
  elseif what == 'missing' then -- a: usage, b: index
    code, msg = 'TRYPEMA_ARG', 'argument ' .. b .. ' (' .. name(a, b) .. ') is missing; the arguments are: ' .. a
  elseif what == 'arg' then -- a: usage, b: index, c: the value, d: the upper bound (bucket_ms) or lower bound (n)
    local arg = name(a, b)
    local s = show(c)
    if arg == 'window_ms' then
      code, msg = 'TRYPEMA_WINDOW', 'window_ms ' .. s .. ' is not an integer in [1, 34560000000] (1 ms to 400 days);'
        .. ' pass the window in milliseconds, for example 10000'
    elseif arg == 'bucket_ms' then
      code, msg = 'TRYPEMA_BUCKET', 'bucket_ms ' .. s .. ' is not an integer in [1, window_ms] = [1, ' .. fmt_int(d)
        .. ']; pass a bucket size in milliseconds no larger than the window, for example 100'
    elseif arg == 'rate' then
      code, msg = 'TRYPEMA_RATE', 'rate ' .. s .. ' is not a positive, finite decimal number of units per second'
        .. ' of at least 2.2250738585072014e-308 (the smallest normal double); pass for example 10 or 0.5'
    elseif arg == 'hard_limit_factor' then
      code, msg = 'TRYPEMA_FACTOR', 'hard_limit_factor ' .. s
        .. ' is not a finite decimal number >= 1; pass 1 for no headroom above the rate, or for example 1.5'
    elseif arg == 'factor_cache_ms' then
      code, msg = 'TRYPEMA_ARG', 'factor_cache_ms ' .. s .. ' is not an integer in [1, 9007199254740991];'
        .. ' pass how long a suppression factor is reused, in ms, for example 100'
    elseif d == 0 and (arg == 'n' or arg == 'seq' or arg == 'need' or arg == 'want') then -- [0, 2^53 - 1]
      code, msg = 'TRYPEMA_COUNT', 'n ' .. s .. ' is not an integer in [0, 9007199254740991];'
        .. ' pass the new live total (0 deletes the key)'
    elseif arg == 'n' and string.find(c, '^0+$') then
      code, msg = 'TRYPEMA_COUNT', 'n 0 consumes nothing; pass a count of at least 1,'
        .. ' or use the read-only scripts to ask without consuming'
    elseif arg == 'n' then
      code, msg = 'TRYPEMA_COUNT', 'n ' .. s .. ' is not an integer in [1, 9007199254740991]; pass the units this call consumes'
    elseif arg == 'u' then
      code, msg = 'TRYPEMA_ARG', 'u ' .. s .. ' is not a decimal number in [0, 1);'
        .. ' pass a uniform draw, or the empty string to let the script draw one'
    elseif arg == 'now_ms' then
      code, msg = 'TRYPEMA_ARG', 'now_ms ' .. s .. ' is not an integer in [0, 9007199254740991];'
        .. ' pass Unix time in milliseconds, or the empty string to use the server time'
    elseif arg == 'comparator' then
      code, msg = 'TRYPEMA_ARG', 'comparator ' .. s .. ' is not one of always, eq, ne, lt, le, gt, ge'
    elseif arg == 'instance' then
      code, msg = 'TRYPEMA_ARG', 'instance ' .. s .. ' is not 1 to 64 letters, digits, _, - or .'
    elseif arg == 'mode' then
      code, msg = 'TRYPEMA_ARG', 'mode ' .. s .. ' is not one of replace, preserve_newest, preserve_oldest'
    else
      code, msg = 'TRYPEMA_ARG', arg .. ' ' .. s .. ' is not one of total, accepted'
    end
  elseif what == 'pending' then -- a: the item, b: suppressed
    code, msg = 'TRYPEMA_ARG', 'pending item ' .. show(a) .. ' is not '
      .. (b and 'last:count:declined' or 'last:count') .. ' with 1 <= count <= 9007199254740991'
      .. (b and ' and declined <= count' or '')
  elseif what == 'zero_capacity' then -- a: rate, b: window
    local head = 'rate ' .. short_float(a) .. '/s over a window of ' .. fmt_ms(b) .. ' allows '
      .. short_float(a * b / 1000) .. ' units, less than one'
    local need = math.ceil((1 - 1e-9) * 1000 / a)
    code = 'TRYPEMA_ZERO_CAPACITY'
    if not (need <= 34560000000) then
      msg = head .. ', and even the longest window (400d) is too short; use a higher rate'
    else
      while need < 34560000000 and math.floor(a * need / 1000 + 1e-9) < 1 do need = need + 1 end
      msg = head .. '; use a window of at least ' .. fmt_ms(need) .. ' (window_ms ' .. fmt_int(need) .. ') or a higher rate'
    end
  elseif what == 'exceeds' then -- a: n, b: the limit, c: rate (false: read it from the meta e), d: window
    if not c then c = tonumber(redis.call('HGET', e, 'rate')) end
    code, msg = 'TRYPEMA_COUNT_EXCEEDS_CAPACITY', 'a call of ' .. fmt_int(a)
      .. ' units can never be admitted by a key whose limit is ' .. fmt_int(b) .. ' (rate ' .. short_float(c)
      .. '/s over ' .. fmt_ms(d) .. '); split the call or raise the rate'
  elseif what == 'corrupt' then -- a: key, b: what is wrong, c: the value read (nil: missing)
    local got = ' is missing'
    if c then got = ' ' .. show(c) .. ' is not what these scripts write' end
    code, msg = 'TRYPEMA_CORRUPT', 'key ' .. show(a) .. ': ' .. b .. got
      .. '; delete both Redis keys of the limited key to start it over'
  else -- 'typed': a: key, b: the type wanted, c: the error reply of a read
    if not string.find(c.err, '^WRONGTYPE') then error(c, 0) end
    code, msg = 'TRYPEMA_WRONGTYPE', 'key ' .. show(a) .. ' is a ' .. redis.call('TYPE', a).ok .. ', not a ' .. b
      .. '; it belongs to something else: check the key prefix, or delete it'
  end
  error({ trypema = code .. ' ' .. msg }, 0)
end

-- run calls op(keys, args) after checking the number of keys and that at
-- most nargs arguments were given (usage lists them, for messages), and
-- turns the errors raised by complain into error replies; when record found
-- the key's list gone, it runs op once more (see record). Every body ends
-- with one call of run.
local function run(op, keys, args, nargs, usage)
  local ok, res
  if #keys ~= 2 then
    ok, res = pcall(complain, 'keys', #keys)
  elseif #args > nargs then
    ok, res = pcall(complain, 'args', #args, nargs, usage)
  else
    ok, res = pcall(op, keys, args)
  end
  if not ok and type(res) == 'table' and res.again then ok, res = pcall(op, keys, args) end
  if ok then return res end
  if type(res) == 'table' and res.trypema then return redis.error_reply(res.trypema) end
  error(res, 0)
end

-- Arguments ----------------------------------------------------------------

-- arg returns args[i] parsed as kind says:
--   'int'    a decimal integer in [lo, hi]. tonumber alone would also take
--            ' 7', '0x1f', '1e3' and '7.0'; the pattern keeps to digits.
--   'float'  a number in [lo, hi) in decimal or exponent notation. The
--            pattern keeps out what tonumber would also take (hexadecimal,
--            'inf', 'nan', spaces); tonumber rejects the rest of what the
--            pattern lets through ('1.2.3', '5e', '1+2').
--   'word'   one of the words in lo (' a b c '), or with lo nil an
--            instance id: 1 to 64 letters, digits, '_', '-' or '.'.
-- An optional argument (opt) may be absent or empty, giving nil. usage
-- lists the script's arguments, for messages.
local function arg(args, i, kind, lo, hi, usage, opt)
  local s = args[i]
  if s == nil or s == '' then
    if opt then return nil end
    complain('missing', usage, i)
  end
  if kind == 'int' then
    local v = tonumber(s)
    if v and v >= lo and v <= hi and string.find(s, '^%d+$') then return v end
    complain('arg', usage, i, s, lo == 0 and 0 or hi)
  elseif kind == 'float' then
    local v = tonumber(s)
    if v and v >= lo and v < hi and string.find(s, '^[+-]?[%d.]+[eE]?[+-]?%d*$') then return v end
  elseif lo then
    if string.find(s, '^[%l_]+$') and string.find(lo, ' ' .. s .. ' ', 1, true) then return s end
  elseif #s <= 64 and string.find(s, '^[%w_.-]+$') then
    return s
  end
  complain('arg', usage, i, s)
end

-- Capacity -------------------------------------------------------------------

-- caps returns the soft cap S (the absolute capacity C) and the hard cap H
-- of rate over window ms with hard-limit factor hf, exactly as
-- trypema.Capacity: x = (r * W) / 1000, S = floor(x + 1e-9),
-- H = max(floor(x * hf + 1e-9), S), both saturating at 2^53 - 1.
-- Given the state st of a key without live state, it also adopts the rate
-- for it (the caps, and fresh for record), after checking that a call of n
-- units could ever be admitted: n <= S, or with by_hard (suppressed) H.
local function caps(rate, window, hf, st, n, by_hard)
  local x = (rate * window) / 1000
  local soft = math.floor(x + 1e-9)
  if soft >= 9007199254740991 then soft = 9007199254740991 end
  if soft == 0 then complain('zero_capacity', rate, window) end
  local hard = math.floor(x * hf + 1e-9)
  if hard >= 9007199254740991 then hard = 9007199254740991 end
  if hard < soft then hard = soft end
  if st then
    local limit = soft
    if by_hard then limit = hard end
    if n > limit then complain('exceeds', n, limit, rate, window) end
    st.rate, st.soft, st.hard, st.total, st.declined, st.fresh = rate, soft, hard, 0, 0, true
  end
  return soft, hard
end

-- State ----------------------------------------------------------------------
--
-- The meta hash mirrors the list's two ends: its fields newest and oldest
-- hold the list's last and first elements (the same string when the list
-- has one bucket), so that a call reads a key with one HMGET instead of
-- also asking the list for them. Every record writes them. A meta without
-- them (written by an older version, or after set_if and a hybrid release,
-- which drop them rather than work them out) is read through the list, and
-- so are keys for the scripts that rewrite the list (mode 'list' of load).

-- bucket parses the list element s of key, "start:last:count:declined".
local function bucket(key, s)
  local a, b, c, d = string.match(s, '^(%d+):(%d+):(%d+):(%d+)$')
  if not a then complain('corrupt', key, 'bucket', s) end
  return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end

-- walk visits the buckets of the list kb from index i on (forwards), or
-- with backwards from index i (negative, counting from the end) towards the
-- head, reading LRANGE chunks of size elements, then 4 times more up to
-- 128, until visit(start, last, count, declined, element) returns true or
-- the list ends.
local function walk(kb, i, size, backwards, visit)
  while true do
    local lo, hi = i, i + size - 1
    if backwards then lo, hi = i - size + 1, i end
    local chunk = redis.call('LRANGE', kb, string.format('%d', lo), string.format('%d', hi))
    local n = #chunk
    if backwards then
      for x = n, 1, -1 do
        local s, l, c, d = bucket(kb, chunk[x])
        if visit(s, l, c, d, chunk[x]) then return end
      end
      i = lo - 1
    else
      for x = 1, n do
        local s, l, c, d = bucket(kb, chunk[x])
        if visit(s, l, c, d, chunk[x]) then return end
      end
      i = hi + 1
    end
    -- A short chunk ends the list (LRANGE clamps its range to the list).
    if n < size then return end
    size = math.min(size * 4, 128)
  end
end

-- load reads a key's state at now (nil: the server's TIME) with the
-- monotonic guard applied and expired buckets skipped (in memory). mode
-- says what the caller needs, in order to read no more:
--   'abs'   the absolute decisions: soft and total (hard is soft, declined
--           0, rate false: a message that needs it reads it);
--   'sup'   the suppressed ones: also hard, declined and the factor cache;
--   'all'   also the rate;
--   'list'  all that, with the list's ends read from the list itself
--           rather than from the mirrors (for scripts that rewrite it).
-- The state st has:
--   kb, km (the keys), window, now, time (TIME's reply, or false), abs
--   (mode 'abs'), dirty (either Redis key holds something), live (a bucket
--   is live), mirror (the stored oldest mirror, or false);
--   and when live: k (the expired buckets at the list's head), tail with
--   ns, nl, nc, nd (the newest bucket: its element, start, last, count,
--   declined), head with os, ol, oc, od (the oldest live bucket, alike;
--   ol, oc and od are false when only its start was read, as below),
--   rate, soft, hard, total and declined (of the live buckets), and f,
--   f_at, f_head (the factor cache; f is false when none is stored).
-- caps (adopting a rate) and factor add: fresh (record writes every meta
-- field), f_new (the factor cache was recomputed).
local function load(keys, window, now, mode)
  local kb, km = keys[1], keys[2]
  local m
  if mode == 'abs' then
    m = redis.pcall('HMGET', km, 'newest', 'oldest', 'soft', 'total')
  elseif mode == 'sup' then
    m = redis.pcall('HMGET', km, 'newest', 'oldest', 'soft', 'total', 'hard', 'declined', 'f', 'f_at', 'f_head')
  else
    m = redis.pcall('HMGET', km, 'newest', 'oldest', 'soft', 'total', 'hard', 'declined', 'f', 'f_at', 'f_head', 'rate')
  end
  if m.err then complain('typed', km, 'hash', m) end
  local tail, head, mirror = m[1], m[2], m[2]
  if not (tail and head) or mode == 'list' then
    -- Through the list, checking every field: a meta these scripts did
    -- not write last may hold anything.
    tail = redis.pcall('LINDEX', kb, -1)
    if type(tail) == 'table' then complain('typed', kb, 'list', tail) end
    head = false
    if mode ~= 'all' and mode ~= 'list' then
      mode = 'all'
      m = redis.call('HMGET', km, 'newest', 'oldest', 'soft', 'total', 'hard', 'declined', 'f', 'f_at', 'f_head', 'rate')
    end
  end
  local time = false
  if now == nil then
    time = redis.call('TIME')
    now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  -- One constructor with every field, so that the table is allocated once.
  local st = {
    kb = kb, km = km, window = window, now = now, time = time, abs = mode == 'abs',
    dirty = tail or m[1] or m[2] or m[3] or m[4] or m[5] or m[6] or m[7] or m[8] or m[9] or m[10] or false,
    live = false, mirror = mirror, k = 0, tail = false, ns = 0, nl = 0, nc = 0, nd = 0,
    head = false, os = 0, ol = 0, oc = 0, od = 0, rate = false, soft = 0, hard = 0, total = 0, declined = 0,
    f = false, f_at = 0, f_head = 0, fresh = false, f_new = false,
  }
  if not tail then return st end
  local ns, nl, nc, nd = bucket(kb, tail)
  if now < nl then
    now = nl
    st.now = now
  end
  -- Buckets end in order of their last calls: when the newest has left
  -- the window, so has everything, and the key is unknown.
  if now - nl >= window then return st end

  -- The meta, checked cheaply: these scripts write integers with %d.
  if mode ~= 'abs' and mode ~= 'sup' then
    local rate = tonumber(m[10])
    if not (rate and rate >= 2.2250738585072014e-308 and rate < math.huge) then complain('corrupt', km, 'field rate', m[10]) end
    st.rate = rate
  end
  local soft, total = tonumber(m[3]), tonumber(m[4])
  if not (soft and soft >= 0 and soft <= 9007199254740991 and soft % 1 == 0) then complain('corrupt', km, 'field soft', m[3]) end
  local hard, declined = soft, 0
  if mode ~= 'abs' then
    hard, declined = tonumber(m[5]), tonumber(m[6])
    if not (hard and hard >= 0 and hard <= 9007199254740991 and hard % 1 == 0) then complain('corrupt', km, 'field hard', m[5]) end
  end
  -- total and declined may pass 2^53 - 1: every suppressed call is
  -- counted, declined ones included.
  if not (total and total >= 0 and total % 1 == 0) then complain('corrupt', km, 'field total', m[4]) end
  if not (declined and declined >= 0 and declined % 1 == 0) then complain('corrupt', km, 'field declined', m[6]) end
  if mode ~= 'abs' and (m[7] or m[8] or m[9]) then
    local f, f_at, f_head = tonumber(m[7]), tonumber(m[8]), tonumber(m[9])
    if not (f and f >= 0 and f <= 1 and f_at and f_at >= 0 and f_at % 1 == 0 and f_head and f_head >= 0 and f_head % 1 == 0) then
      complain('corrupt', km, 'the factor cache (fields f, f_at, f_head)', (m[7] or '') .. ',' .. (m[8] or '') .. ',' .. (m[9] or ''))
    end
    st.f, st.f_at, st.f_head = f, f_at, f_head
  end

  -- The oldest bucket: the same string as the newest when it is the only
  -- one (buckets differ in their start). Only its start, when that shows
  -- it live (its last is later) and the script does not rewrite the list:
  -- rejection parses the rest when it needs it (ol is false until then).
  if not head then head = redis.call('LINDEX', kb, 0) end
  local os, ol, oc, od = ns, nl, nc, nd
  if head ~= tail then
    os, ol, oc, od = tonumber(string.match(head, '^%d+')), false, false, false
    if not os or mode == 'list' or now - os >= window then os, ol, oc, od = bucket(kb, head) end
  end
  local k = 0
  if ol and now - ol >= window then
    -- It has left the window: walk on to the first live bucket (at the
    -- latest the newest), taking the expired ones out of the totals. Most
    -- often the next one is live: read one, then more.
    k, total, declined = 1, total - oc, declined - od
    walk(kb, 1, 1, false, function(s, l, c, d, e)
      if now - l < window then
        head, os, ol, oc, od = e, s, l, c, d
        return true
      end
      k, total, declined = k + 1, total - c, declined - d
    end)
  end
  st.live, st.k, st.tail, st.head = true, k, tail, head
  st.ns, st.nl, st.nc, st.nd, st.os, st.ol, st.oc, st.od = ns, nl, nc, nd, os, ol, oc, od
  st.soft, st.hard, st.total, st.declined = soft, hard, total, declined
  return st
end

-- Writing ------------------------------------------------------------------

-- prune drops the expired buckets, or everything when the key has no live
-- state (its sticky rate is forgotten).
local function prune(st)
  if not st.live then
    if st.dirty then redis.call('DEL', st.kb, st.km) end
  elseif st.k > 0 then
    redis.call('LTRIM', st.kb, string.format('%d', st.k), '-1')
  end
end

-- record adds n units (d of them declined) at now and writes the key: the
-- expired buckets go; the newest bucket takes the units when now is less
-- than bucket_ms after its start, else a new bucket starts; the meta gets
-- the totals, the mirrors (oldest only when it moved), every field for a
-- fresh key and the factor cache when it was recomputed; both keys get the
-- window as their TTL (the newest call is now). st.total and st.declined
-- become the new totals; record returns the start of the bucket that took
-- the units.
--
-- The mirrors may tell of a list that is gone: its TTL ran out a
-- millisecond before the meta's (the two PEXPIREs straddled a clock tick)
-- while the caller's clock still sees it live. The list write notices,
-- before anything else is written; the meta goes too, and run starts the
-- call over on the forgotten key.
local function record(st, bucket_ms, n, d)
  local kb, km, now = st.kb, st.km, st.now
  prune(st)
  local start, tail, head = now, nil, st.head
  if st.live and now - st.ns < bucket_ms then
    start = st.ns
    tail = string.format('%d:%d:%d:%d', start, now, st.nc + n, st.nd + d)
    if st.os == start then head = tail end -- the only live bucket
    local r = redis.pcall('LSET', kb, '-1', tail)
    if r.err then
      if not string.find(r.err, 'no such key') then complain('typed', kb, 'list', r) end
      redis.call('DEL', km)
      error({ again = true }, 0)
    end
  else
    tail = string.format('%d:%d:%d:%d', now, now, n, d)
    if st.live then
      local r = redis.pcall('RPUSHX', kb, tail)
      if type(r) == 'table' then complain('typed', kb, 'list', r) end
      if r == 0 then
        redis.call('DEL', km)
        error({ again = true }, 0)
      end
    else
      redis.call('RPUSH', kb, tail)
      head = tail
    end
  end
  st.total, st.declined = st.total + n, st.declined + d
  local total = string.format('%d', st.total)
  if st.fresh then
    redis.call('HSET', km, 'rate', string.format('%.17g', st.rate), 'soft', string.format('%d', st.soft),
      'hard', string.format('%d', st.hard), 'total', total, 'declined', string.format('%d', st.declined),
      'newest', tail, 'oldest', head)
  elseif st.f_new then -- suppressed, once per factor_cache_ms at most
    local h = { 'HSET', km, 'total', total, 'declined', string.format('%d', st.declined), 'newest', tail,
      'f', string.format('%.17g', st.f), 'f_at', string.format('%d', st.f_at), 'f_head', string.format('%d', st.f_head) }
    if head ~= st.mirror then h[15], h[16] = 'oldest', head end
    redis.call(unpack(h))
  elseif st.abs then -- declined stays 0
    if head == st.mirror then
      redis.call('HSET', km, 'total', total, 'newest', tail)
    else
      redis.call('HSET', km, 'total', total, 'newest', tail, 'oldest', head)
    end
  elseif head == st.mirror then
    redis.call('HSET', km, 'total', total, 'declined', string.format('%d', st.declined), 'newest', tail)
  else
    redis.call('HSET', km, 'total', total, 'declined', string.format('%d', st.declined), 'newest', tail, 'oldest', head)
  end
  local ttl = string.format('%d', st.window)
  redis.call('PEXPIRE', kb, ttl)
  redis.call('PEXPIRE', km, ttl)
  return start
end

-- rewrite writes, after a script changed the list (and then st.total and
-- st.declined), the rate, caps and totals of st, the mirrors of the list's
-- ends (nil: unknown, dropped), and both keys' TTL: the time until the
-- newest call, made at last, leaves the window. The factor cache goes:
-- the rate or the buckets it was computed from changed.
local function rewrite(st, tail, head, last)
  local km = st.km
  if tail then
    redis.call('HSET', km, 'rate', string.format('%.17g', st.rate), 'soft', string.format('%d', st.soft),
      'hard', string.format('%d', st.hard), 'total', string.format('%d', st.total),
      'declined', string.format('%d', st.declined), 'newest', tail, 'oldest', head)
    if st.f then redis.call('HDEL', km, 'f', 'f_at', 'f_head') end
  else
    redis.call('HSET', km, 'rate', string.format('%.17g', st.rate), 'soft', string.format('%d', st.soft),
      'hard', string.format('%d', st.hard), 'total', string.format('%d', st.total),
      'declined', string.format('%d', st.declined))
    redis.call('HDEL', km, 'newest', 'oldest', 'f', 'f_at', 'f_head')
  end
  local ttl = string.format('%d', math.max(1, st.window - (st.now - last)))
  redis.call('PEXPIRE', st.kb, ttl)
  redis.call('PEXPIRE', km, ttl)
end

-- Decisions ----------------------------------------------------------------

-- rejection is the absolute strategy's Rejected reply for n units: the
-- exact wait until expiries alone make room, found by walking from the
-- oldest live bucket (held in st) on.
local function rejection(st, n)
  local c, total, window, now = st.soft, st.total, st.window, st.now
  if not st.ol then
    local _, l, count = bucket(st.kb, st.head)
    st.ol, st.oc = l, count
  end
  local freed, retry = st.oc, 0
  if total - freed + n <= c then
    retry = window - (now - st.ol)
  else
    walk(st.kb, st.k + 1, 4, false, function(_, l, count)
      freed = freed + count
      if total - freed + n <= c then
        retry = window - (now - l)
        return true
      end
    end)
  end
  return { 'rejected', c, math.max(0, c - total), retry, c - (total - freed) }
end

-- factor is the suppression factor (sliding.currentFactor): the bounds,
-- then the cache while it is fresh and its oldest bucket still live, else a
-- new value, kept in st for record when store is set. The new value is
-- sliding.computeFactor's clamp(1 - (S / W_s) / perceived, 0, 1),
-- perceived being the units of the buckets whose last call is under
-- 1000 ms old, per second of the span since the first of them began (at
-- least 1 s), or once accepted usage reaches S the larger of that and
-- total / W_s.
local function factor(st, cache_ms, store)
  if not st.live or st.total < st.soft then return 0 end
  local accepted = st.total - st.declined
  if accepted >= st.hard then return 1 end
  local now, window = st.now, st.window
  if st.f and now - st.f_at < cache_ms and st.os == st.f_head then return st.f end
  local ws = window / 1000
  local recent, span = 0, 1000
  if now - st.nl < 1000 then
    -- The newest bucket is in st; walk back from the one before it,
    -- stopping at the look-back or at the expired buckets. The counted
    -- buckets' calls began at the oldest one's start, which may be more
    -- than 1000 ms ago: the rate is taken over that span.
    recent, span = st.nc, math.max(span, now - st.ns)
    walk(st.kb, -2, 4, true, function(s, l, c)
      if now - l >= 1000 or now - l >= window then return true end
      recent, span = recent + c, math.max(span, now - s)
    end)
  end
  local perceived = recent * 1000 / span
  if accepted >= st.soft then perceived = math.max(perceived, st.total / ws) end
  local f = 0
  if perceived > 0 then f = math.min(math.max(1 - (st.soft / ws) / perceived, 0), 1) end
  if store then st.f, st.f_at, st.f_head, st.f_new = f, now, st.os, true end
  return f
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

-- sync is the body of absolute_sync and suppressed_sync; a holds their
-- parsed arguments (window, bucket, hf, cache_ms, rate, instance, seq,
-- need, u, want, pending, now), hf 1 for the absolute strategy.
local function sync(keys, a, suppressed)
  local kb, km, window, hf = keys[1], keys[2], a.window, a.hf

  -- pending: "last:count" (absolute) or "last:count:declined" items
  -- separated by commas, every number checked.
  local items = {}
  if a.pending then
    local pattern = suppressed and '^(%d+):(%d+):(%d+)$' or '^(%d+):(%d+)$'
    for item in string.gmatch(a.pending, '[^,]+') do
      local l, c, d = string.match(item, pattern)
      local last, count, declined = tonumber(l or ''), tonumber(c or ''), tonumber(d or '0')
      if not last or last > 9007199254740991 or count > 9007199254740991 or count < 1 or declined > count then
        complain('pending', item, suppressed)
      end
      items[#items + 1] = { last, count, declined }
    end
  end
  local now = a.now
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  -- A key without live state adopts the call's rate: its capacity must be
  -- checked before anything is written. A live key keeps its sticky rate.
  if not load(keys, window, now, 'abs').live then caps(a.rate, window, hf) end
  local q = redis.call('HGET', km, 'q:' .. a.instance)
  if q and not string.find(q, '^%d+$') then complain('corrupt', km, 'field q:' .. a.instance, q) end
  local fresh = not q or a.seq > tonumber(q)

  -- Hand back the reservation: its units leave the bucket that holds them
  -- (a bucket left empty is removed), found walking back from the newest.
  -- The list changes under the mirrors: they go (see load).
  local field = 'h:' .. a.instance
  local held = redis.call('HGET', km, field)
  if held then
    local units, start = string.match(held, '^(%d+):(%d+)$')
    if not units then complain('corrupt', km, 'field ' .. field, held) end
    units, start = tonumber(units), tonumber(start)
    local st = load(keys, window, now, 'list')
    local fs, fl, fc, fd, at -- the bucket, and its index from the end
    if st.live then
      if st.ns == start then
        fs, fl, fc, fd, at = st.ns, st.nl, st.nc, st.nd, -1
      elseif st.ns > start then
        local i = -1
        walk(kb, -2, 4, true, function(s, l, c, d)
          i = i - 1
          if st.now - l >= window or s < start then return true end -- expired, or passed it
          if s == start then
            fs, fl, fc, fd, at = s, l, c, d, i
            return true
          end
        end)
      end
    end
    local take = fs and math.min(units, fc - fd) or 0
    if take > 0 then
      prune(st) -- indices from the end stay valid
      st.total = st.total - take
      if take < fc then
        redis.call('LSET', kb, string.format('%d', at), string.format('%d:%d:%d:%d', fs, fl, fc - take, fd))
      elseif st.total == 0 and st.os == st.ns then -- it was the only live bucket
        redis.call('DEL', kb, km)
      else
        redis.call('LREM', kb, '1', string.format('%d:%d:%d:%d', fs, fl, fc, fd))
      end
      if st.total > 0 then
        -- declined too: prune may have dropped expired declines.
        redis.call('HSET', km, 'total', string.format('%d', st.total), 'declined', string.format('%d', st.declined))
      end
      redis.call('HDEL', km, field, 'newest', 'oldest')
    else
      redis.call('HDEL', km, field)
    end
  end

  if fresh then
    for _, p in ipairs(items) do
      local st = load(keys, window, math.min(p[1], now), suppressed and 'sup' or 'abs')
      if not st.live then caps(a.rate, st.window, hf, st, 0, false) end
      record(st, a.bucket, p[2], p[3])
    end
  end

  local st = load(keys, window, now, suppressed and 'sup' or 'abs')
  local need, outcome, reply = a.need, 'none', nil
  if not st.live then
    if need == 0 and a.want == 0 then
      if #items > 0 and fresh then redis.call('HSET', km, 'q:' .. a.instance, string.format('%d', a.seq)) end
      if suppressed then return { 'none', 0, 0, 0, '0', 0, 0, 0 } end
      return { 'none', 0, 0, 0, 0, 0, 0 }
    end
    caps(a.rate, st.window, hf, st, need, suppressed)
  else
    local limit = suppressed and st.hard or st.soft
    if need > limit then complain('exceeds', need, limit, st.rate, window, st.km) end
  end
  -- Decide need first (on the state before this call, as the inc scripts
  -- do), then record need and the new reservation in one bucket update.
  local f, add, add_declined = 0, 0, 0
  if suppressed then
    local forecast = st.total - st.declined + need
    if need > 0 and forecast > st.hard then
      reply, f, add, add_declined = { 'suppressed', 0, st.soft, 0 }, 1, need, need
    elseif need > 0 then
      f = factor(st, a.cache_ms, true)
      if f == 0 and forecast <= st.soft then
        reply, add = { 'allowed', 1, st.soft, st.soft - forecast }, need
      else
        local admitted = a.u < 1 - f
        reply, add = { 'suppressed', admitted and 1 or 0, st.soft, 0 }, need
        if not admitted then add_declined = need end
      end
    else
      f = factor(st, a.cache_ms, false)
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
    local start = record(st, a.bucket, add + grant, add_declined)
    if grant > 0 then
      redis.call('HSET', km, field, string.format('%d', grant) .. ':' .. string.format('%d', start))
    end
  end
  if #items > 0 and fresh then redis.call('HSET', km, 'q:' .. a.instance, string.format('%d', a.seq)) end
  if suppressed then
    reply = reply or { 'none', 0, st.soft, 0 }
    return { reply[1], reply[2], reply[3], reply[4], string.format('%.17g', f), grant, st.hard, st.total - st.declined }
  end
  if reply then
    return { 'rejected', 0, reply[2], reply[3], reply[4], reply[5], st.total }
  end
  return { outcome, grant, st.soft, st.soft - st.total, 0, 0, st.total }
end

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
