-- Decide one bid atomically.
-- KEYS: 1 lot hash, 2 lot stream, 3 ref key, 4 lot deposit set,
--       5 session deposit set, 6 deadline zset, 7 ingest stream, 8 notify stream
-- ARGV: 1 lot id, 2 user id, 3 masked name, 4 amount, 5 ref, 6 ref ttl,
--       7 stream maxlen, 8 max_amount ('' if none)
local lot, stream, refkey = KEYS[1], KEYS[2], KEYS[3]
local lot_id, uid, name = ARGV[1], ARGV[2], ARGV[3]
local amount = tonumber(ARGV[4])
local maxlen = ARGV[7]
local channel = 'lot:' .. lot_id

local cached = redis.call('GET', refkey)
if cached then return cached end

local function answer(t)
  local s = cjson.encode(t)
  redis.call('SET', refkey, s, 'EX', ARGV[6])
  return s
end
local function reject(code, message)
  return answer({code = code, message = message})
end

local f = redis.call('HMGET', lot, 'status', 'start', 'inc', 'price', 'leader',
                     'seq', 'deadline', 'win', 'by', 'count', 'reserve', 'pmax')
local status = f[1]
if not status then
  return cjson.encode({code = 'not_found', message = 'no such lot'})
end
local now = now_ms()
local deadline = tonumber(f[7] or '0')
if status == 'closed' or status == 'settled' or (status == 'live' and now >= deadline) then
  return reject('lot_closed', 'bidding on this lot has ended')
end
if status ~= 'live' then
  return reject('lot_not_open', 'this lot is not open for bids')
end
if redis.call('SISMEMBER', KEYS[4], uid) == 0 and redis.call('SISMEMBER', KEYS[5], uid) == 0 then
  return reject('no_deposit', 'pay the deposit before bidding')
end

local start, inc = tonumber(f[2]), f[3]
local price = tonumber(f[4] or '0')
local leader = f[5] or ''
local base, min
if price == 0 then
  base = start
  min = start
else
  base = price
  min = price + increment_at(inc, price)
end
if leader == uid then
  return reject('already_leading', 'you are already the highest bidder')
end
if amount < min then
  return reject('too_low', 'the minimum bid is ' .. string.format('%d', min))
end
local step = increment_at(inc, base)
if (amount - base) % step ~= 0 then
  return reject('invalid', 'a bid must be a whole number of increments of ' .. string.format('%d', step))
end

-- Accepted.
local seq = tonumber(f[6] or '0') + 1
local count = tonumber(f[10] or '0') + 1
local win, by = tonumber(f[8]), tonumber(f[9])
local extended = false
if deadline - now < win then
  local nd = math.max(deadline, now + by)
  if nd ~= deadline then
    deadline = nd
    extended = true
    redis.call('ZADD', KEYS[6], deadline, lot_id)
  end
end
local reserve = tonumber(f[11] or '0')
redis.call('HSET', lot, 'price', amount, 'leader', uid, 'leader_name', name,
           'seq', seq, 'sub', 0, 'count', count, 'deadline', deadline,
           'last_bid_ms', now)
local next_min = amount + increment_at(inc, amount)
local id = seq .. '-0'
local ev = cjson.encode({type = 'bid', lot_id = tonumber(lot_id), seq = seq, amount = amount,
                         bidder = name, at_ms = now, deadline_ms = deadline,
                         next_min_bid = next_min, reserve_met = amount >= reserve,
                         server_time_ms = now})
emit(stream, channel, lot_id, id, uid, ev, maxlen)
if extended then
  redis.call('HSET', lot, 'sub', 1)
  emit(stream, channel, lot_id, seq .. '-1', '', cjson.encode(
    {type = 'extended', lot_id = tonumber(lot_id), deadline_ms = deadline, server_time_ms = now}), maxlen)
end
-- The database copy: one stream for all lots, drained in batches by a worker
-- through a consumer group, so nothing accepted is lost across restarts.
redis.call('XADD', KEYS[7], '*', 'lot', lot_id, 'seq', seq, 'uid', uid,
           'amount', amount, 'at', now, 'ref', ARGV[5])
if leader ~= '' then
  redis.call('PUBLISH', 'user:' .. leader, cjson.encode(
    {type = 'outbid', lot_id = tonumber(lot_id), price = amount, server_time_ms = now}))
  -- For the notification worker (SMS etc.): one entry per lost lead.
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', 100000, '*', 'kind', 'outbid', 'uid', leader,
             'lot', lot_id, 'price', amount, 'at', now)
end
return answer({accepted = true, seq = seq, price = amount, deadline_ms = deadline})
