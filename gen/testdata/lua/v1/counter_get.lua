--! script   counter_get
--! summary  Reads a counter.
--! readonly true
--! key      counter  the counter (STRING)
--! arg      now_ms   int  ms  optional  ignored
--! reply    total    int    the counter, 0 when absent
--! reply    half     float  total / 2
--! example  1 fx:{a}:counter
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
return {total, string.format('%.17g', total / 2)}
