--! script   counter_add
--! summary  Adds n to a counter and returns the new total, a scaled copy and a label.
--! readonly false
--! key      counter  the counter (STRING)
--! key      log      a list of labels (LIST)
--! arg      n        int    units    required  units to add, 1 or more
--! arg      scale    float  ratio    required  multiplier for the scaled reply | finite
--! arg      label    string -        optional  pushed onto the log when given
--! arg      now_ms   int    ms       optional  ignored; shows a trailing optional
--! reply    total    int    the counter after adding n
--! reply    scaled   float  total × scale
--! reply    label    string the label, or "" when none was given
--! error    TRYPEMA_KEYS  not exactly two keys
--! error    TRYPEMA_COUNT n is not an integer ≥ 1
--! example  2 fx:{a}:counter fx:{a}:log 3 0.5 "" 1700000000000
if not keys2(KEYS) then return fail('TRYPEMA_KEYS', 'want 2 keys') end
local n = int(ARGV[1])
if not n or n < 1 then return fail('TRYPEMA_COUNT', 'n must be an integer >= 1, got ' .. tostring(ARGV[1])) end
local scale = tonumber(ARGV[2])
local label = ARGV[3] or ''
local total = redis.call('INCRBY', KEYS[1], n)
if label ~= '' then redis.call('RPUSH', KEYS[2], label) end
return {total, string.format('%.17g', total * scale), label}
