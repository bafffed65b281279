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

local usage = 'window_ms bucket_ms hard_limit_factor factor_cache_ms rate instance seq need u want [pending] [now_ms]'

local function op(keys, args)
  local a = {}
  a.window = arg(args, 1, 'int', 1, 34560000000, usage)
  a.bucket = arg(args, 2, 'int', 1, a.window, usage)
  a.hf = arg(args, 3, 'float', 1, math.huge, usage)
  a.cache_ms = arg(args, 4, 'int', 1, 9007199254740991, usage)
  a.rate = arg(args, 5, 'float', 2.2250738585072014e-308, math.huge, usage)
  a.instance = arg(args, 6, 'word', nil, nil, usage)
  a.seq = arg(args, 7, 'int', 0, 9007199254740991, usage)
  a.need = arg(args, 8, 'int', 0, 9007199254740991, usage)
  a.u = arg(args, 9, 'float', 0, 1, usage)
  a.want = arg(args, 10, 'int', 0, 9007199254740991, usage)
  if args[11] ~= '' then a.pending = args[11] end
  a.now = arg(args, 12, 'int', 0, 9007199254740991, usage, true)
  return sync(keys, a, true)
end

return run(op, KEYS, ARGV, 12, usage)
