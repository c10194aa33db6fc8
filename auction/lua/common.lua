-- Shared helpers, prepended to every lot script (Redis has no Lua modules),
-- after the key-name functions that auction/engine.py generates from auction/keys.py.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The increment in force at `price`: a fixed amount, or a ladder
-- [[below_amount, step], ...] whose last step applies above its last band.
local function increment_at(inc, price)
  local v = cjson.decode(inc)
  if type(v) == 'number' then return v end
  local step = v[#v][2]
  for i = 1, #v do
    local below = v[i][1]
    if below == cjson.null or price < below then return v[i][2] end
  end
  return step
end

-- Stream ids are "<seq>-<sub>": seq counts accepted bids, sub orders the
-- other events (extended, lot_status, closed) that follow a bid.
local function next_event_id(lot)
  local seq = tonumber(redis.call('HGET', lot, 'seq') or '0')
  local sub = redis.call('HINCRBY', lot, 'sub', 1)
  return seq .. '-' .. sub
end

-- Append to the lot stream and publish "<lot>|<id>|<uid>|<json>".
-- The header lets the hall route and de-duplicate without decoding JSON.
local function emit(stream, channel, lot_id, id, uid, payload, maxlen)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, id, 'u', uid, 'd', payload)
  redis.call('PUBLISH', channel, lot_id .. '|' .. id .. '|' .. uid .. '|' .. payload)
end

-- Close one lot whose deadline has passed (or now, when forced by the hammer).
-- Idempotent: closing a closed lot returns its result again. Used by
-- close.lua (one lot) and close_due.lua (every due lot in one call).
local function close_lot(lot_id, force, deadlines, maxlen)
  local lot, stream = lot_key(lot_id), stream_key(lot_id)
  local f = redis.call('HMGET', lot, 'status', 'deadline', 'price', 'leader', 'leader_name',
                       'reserve', 'result', 'seq')
  local status = f[1]
  if not status then return {error = 'not_found'} end
  local now = now_ms()
  if status == 'closed' or status == 'settled' then
    return {already = true, status = status, result = f[7], price = tonumber(f[3] or '0'),
            winner_id = f[4] or '', seq = tonumber(f[8] or '0')}
  end
  local deadline = tonumber(f[2] or '0')
  if not force then
    if status ~= 'live' then return {not_due = true, status = status} end
    if now < deadline then return {not_due = true, deadline_ms = deadline} end
  elseif status ~= 'live' and status ~= 'paused' then
    return {error = 'lot_not_open', status = status}
  end
  local price = tonumber(f[3] or '0')
  local leader = f[4] or ''
  local reserve = tonumber(f[6] or '0')
  local result = 'unsold'
  if leader ~= '' and price >= reserve then result = 'sold' end
  local winner, winner_id = cjson.null, ''
  if result == 'sold' then winner, winner_id = f[5], leader end
  redis.call('HSET', lot, 'status', 'closed', 'result', result, 'closed_at', now,
             'deadline', math.min(deadline, now))
  redis.call('ZREM', deadlines, lot_id)
  -- Closed, not yet settled: in the same step as the close, so a settlement
  -- that is never queued (or lost) is found by the sweep.
  redis.call('ZADD', UNSETTLED, now, lot_id)
  local p = cjson.null
  if price > 0 then p = price end
  emit(stream, lot_channel(lot_id), lot_id, next_event_id(lot), winner_id, cjson.encode(
    {type = 'closed', lot_id = tonumber(lot_id), result = result, price = p, winner = winner,
     server_time_ms = now}), maxlen)
  return {closed = true, result = result, price = price, winner_id = winner_id,
          seq = tonumber(f[8] or '0'), closed_at_ms = now, deadline_ms = deadline}
end
