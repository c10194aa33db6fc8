-- Close every lot whose deadline has passed, by Redis' clock, in one call:
-- 200 lots ending in the same second close together, not one sweep step each.
-- KEYS: 1 deadline zset
-- ARGV: 1 stream maxlen, 2 most lots per call
-- Returns the ids of the lots it closed.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local closed = {}
for _, lot_id in ipairs(due) do
  local r = close_lot(lot_id, false, KEYS[1], ARGV[1])
  if r.closed then
    closed[#closed + 1] = tonumber(lot_id)
  elseif r.already or r.error or r.status then
    -- Closed by the hammer, paused or gone: it no longer belongs in the zset.
    redis.call('ZREM', KEYS[1], lot_id)
  end
end
return cjson.encode(closed)
