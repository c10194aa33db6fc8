-- Close a lot whose deadline has passed (or now, when forced by the hammer).
-- Idempotent: closing a closed lot returns its result again.
-- KEYS: 1 lot hash, 2 lot stream, 3 deadline zset
-- ARGV: 1 lot id, 2 force ('1' = hammer), 3 stream maxlen
local lot, stream = KEYS[1], KEYS[2]
local lot_id = ARGV[1]
local f = redis.call('HMGET', lot, 'status', 'deadline', 'price', 'leader', 'leader_name',
                     'reserve', 'result', 'seq')
local status = f[1]
if not status then return cjson.encode({error = 'not_found'}) end
local now = now_ms()
if status == 'closed' or status == 'settled' then
  return cjson.encode({already = true, status = status, result = f[7], price = tonumber(f[3] or '0'),
                       winner_id = f[4] or '', seq = tonumber(f[8] or '0')})
end
local deadline = tonumber(f[2] or '0')
if ARGV[2] ~= '1' then
  if status ~= 'live' then return cjson.encode({not_due = true, status = status}) end
  if now < deadline then return cjson.encode({not_due = true, deadline_ms = deadline}) end
else
  if status ~= 'live' and status ~= 'paused' then
    return cjson.encode({error = 'lot_not_open', status = status})
  end
end
local price = tonumber(f[3] or '0')
local leader = f[4] or ''
local reserve = tonumber(f[6] or '0')
local result = 'unsold'
if leader ~= '' and price >= reserve then result = 'sold' end
local winner = cjson.null
local winner_id = ''
if result == 'sold' then
  winner = f[5]
  winner_id = leader
end
local closed_at = now
if ARGV[2] ~= '1' then closed_at = math.max(now, deadline) end
redis.call('HSET', lot, 'status', 'closed', 'result', result, 'closed_at', now,
           'deadline', math.min(deadline, now))
redis.call('ZREM', KEYS[3], lot_id)
local p = cjson.null
if price > 0 then p = price end
local id = next_event_id(lot)
emit(stream, 'lot:' .. lot_id, lot_id, id, winner_id, cjson.encode(
  {type = 'closed', lot_id = tonumber(lot_id), result = result, price = p, winner = winner,
   server_time_ms = now}), ARGV[3])
return cjson.encode({closed = true, result = result, price = price, winner_id = winner_id,
                     seq = tonumber(f[8] or '0'), closed_at_ms = now, deadline_ms = deadline})
