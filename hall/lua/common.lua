-- Shared helpers, prepended to every lot script (Redis has no Lua modules).
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
