-- Fixture library for the generator's tests: a few shared local functions,
-- in the style of the real lua/v1/lib.lua.

local function fail(code, msg)
  return redis.error_reply(code .. ' ' .. msg)
end

-- int parses a decimal integer argument; nil when absent or empty.
local function int(v)
  if v == nil or v == '' then return nil end
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) then return false end
  return n
end

local function keys2(keys)
  return #keys == 2
end
