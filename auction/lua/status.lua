-- Operator and scheduler controls: go live, pause, resume, fair warning;
-- and `settled`, set by the worker once the result is written down.
-- KEYS: 1 lot hash, 2 lot stream, 3 deadline zset
-- ARGV: 1 lot id, 2 action (open|pause|resume|fair_warning|settled), 3 stream maxlen,
--       4 fair warning ms (the countdown a fair warning leaves, if the lot ends later)
local lot, stream = KEYS[1], KEYS[2]
local lot_id, action = ARGV[1], ARGV[2]
local f = redis.call('HMGET', lot, 'status', 'deadline', 'remaining', 'seq')
local status = f[1]
if not status then return cjson.encode({error = 'not_found'}) end
local now = now_ms()
local deadline = tonumber(f[2] or '0')
local new
if action == 'open' then
  if status == 'live' then return cjson.encode({status = status, deadline_ms = deadline, same = true}) end
  if status ~= 'scheduled' and status ~= 'draft' then return cjson.encode({error = 'conflict', status = status}) end
  if deadline <= now then return cjson.encode({error = 'conflict', status = status, reason = 'deadline passed'}) end
  new = 'live'
  redis.call('ZADD', KEYS[3], deadline, lot_id)
elseif action == 'pause' then
  if status == 'paused' then return cjson.encode({status = status, same = true}) end
  if status ~= 'live' or now >= deadline then return cjson.encode({error = 'conflict', status = status}) end
  -- The countdown stops: keep what was left, restore it on resume.
  new = 'paused'
  redis.call('HSET', lot, 'remaining', deadline - now)
  redis.call('HDEL', lot, 'warn_seq')  -- a pause ends a fair warning
  redis.call('ZREM', KEYS[3], lot_id)
elseif action == 'resume' then
  if status == 'live' then return cjson.encode({status = status, deadline_ms = deadline, same = true}) end
  if status ~= 'paused' then return cjson.encode({error = 'conflict', status = status}) end
  new = 'live'
  deadline = now + tonumber(f[3] or '0')
  redis.call('HSET', lot, 'deadline', deadline)
  redis.call('ZADD', KEYS[3], deadline, lot_id)
elseif action == 'settled' then
  if status == 'settled' then return cjson.encode({status = status, same = true}) end
  if status ~= 'closed' then return cjson.encode({error = 'conflict', status = status}) end
  new = 'settled'
elseif action == 'fair_warning' then
  if status ~= 'live' or now >= deadline then return cjson.encode({error = 'conflict', status = status}) end
  -- As a clerk gives it: the last seconds before the hammer, a state of its
  -- own with its own countdown (the lot closes when it runs out, unless it
  -- ends sooner anyway). It lasts while no new bid comes (warn_seq: the bid
  -- it was given on); a bid in the soft-close window extends as always.
  local warn = tonumber(ARGV[4] or '0')
  if warn > 0 and deadline > now + warn then
    deadline = now + warn
    redis.call('HSET', lot, 'deadline', deadline)
    redis.call('ZADD', KEYS[3], deadline, lot_id)
  end
  redis.call('HSET', lot, 'warn_seq', f[4] or '0')
  new = 'live'
else
  return cjson.encode({error = 'invalid'})
end
redis.call('HSET', lot, 'status', new)
local shown = new
if action == 'fair_warning' then shown = 'fair_warning' end
local id = next_event_id(lot)
emit(stream, lot_channel(lot_id), lot_id, id, '', cjson.encode(
  {type = 'lot_status', lot_id = tonumber(lot_id), status = shown, deadline_ms = deadline,
   server_time_ms = now}), ARGV[3])
return cjson.encode({status = new, deadline_ms = deadline})
