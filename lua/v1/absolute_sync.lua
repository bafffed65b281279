--! script   absolute_sync
--! summary  Hybrid provider, absolute strategy: commits an instance's local calls, hands back its reservation, decides need units and reserves up to want more
--! readonly false
--! key      buckets  LIST of the key's buckets "start:last:count:declined", oldest first (<prefix>:v1:abs:{<key>}:buckets)
--! key      meta     HASH of the key's rate, caps, totals, and per instance its reservation (h:<instance>) and last sequence number (q:<instance>)
--! arg      window_ms  int     ms       required  sliding window, 1 to 34560000000 (400 days)
--! arg      bucket_ms  int     ms       required  coalescing bucket size, 1 to window_ms
--! arg      rate       float   units/s  required  rate a key without live usage adopts (sticky afterwards); positive, finite, normal
--! arg      instance   string  -        required  the calling instance's id: 1 to 64 letters, digits, '_', '-' or '.'
--! arg      seq        int     -        required  sequence number of pending: a pending list already applied under a number >= seq is skipped, so a retry after a lost reply counts once
--! arg      need       int     units    required  units to decide now (0: none), recorded at now if admitted
--! arg      want       int     units    required  units to reserve for this instance after the call (granted as far as capacity allows)
--! arg      pending    string  -        optional  calls the instance admitted from its reservation, "last:count" pairs separated by commas, oldest first ("" for none)
--! arg      now_ms     int     ms       optional  Unix time in milliseconds; absent or empty: the server's TIME
--! reply    outcome                  string  allowed or rejected (the decision for need), or none when need is 0
--! reply    granted                  int     units now reserved for this instance (0 when need was rejected)
--! reply    limit                    int     the key's capacity C
--! reply    remaining                int     C minus the live units after the call, reservations included
--! reply    retry_after_ms           int     rejected: the shortest wait after which expiries alone make room for need; else 0
--! reply    remaining_after_waiting  int     rejected: the room after retry_after_ms; else 0
--! reply    live                     int     the live units after the call, reservations included
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_ARG  an argument is missing or out of range, or pending is malformed
--! error    TRYPEMA_WINDOW  window_ms is not an integer in [1, 34560000000]
--! error    TRYPEMA_BUCKET  bucket_ms is not an integer in [1, window_ms]
--! error    TRYPEMA_RATE  rate is not a positive, finite, normal decimal number
--! error    TRYPEMA_ZERO_CAPACITY  rate admits less than one unit over the window
--! error    TRYPEMA_COUNT_EXCEEDS_CAPACITY  need is larger than the key's capacity
--! error    TRYPEMA_WRONGTYPE  a key exists with another Redis type
--! error    TRYPEMA_CORRUPT  the stored state was not written by these scripts
--! example  2 trypema:v1:abs:{user_1}:buckets trypema:v1:abs:{user_1}:meta 10000 100 10 inst_1 1 1 4 "" 1000000

local usage = 'window_ms bucket_ms rate instance seq need want [pending] [now_ms]'

local function op(keys, args)
  local a = { hf = 1 }
  a.window = arg(args, 1, 'int', 1, 34560000000, usage)
  a.bucket = arg(args, 2, 'int', 1, a.window, usage)
  a.rate = arg(args, 3, 'float', 2.2250738585072014e-308, math.huge, usage)
  a.instance = arg(args, 4, 'word', nil, nil, usage)
  a.seq = arg(args, 5, 'int', 0, 9007199254740991, usage)
  a.need = arg(args, 6, 'int', 0, 9007199254740991, usage)
  a.want = arg(args, 7, 'int', 0, 9007199254740991, usage)
  if args[8] ~= '' then a.pending = args[8] end
  a.now = arg(args, 9, 'int', 0, 9007199254740991, usage, true)
  return sync(keys, a, false)
end

return run(op, KEYS, ARGV, 9, usage)
