-- Decide one bid atomically, proxy maxima included (the eBay rule).
-- KEYS: 1 lot hash, 2 lot stream, 3 ref key, 4 lot deposit set,
--       5 session deposit set, 6 deadline zset, 7 ingest stream, 8 notify stream,
--       9 the user's bid-rate window, 10 the lot's pre-emption holders {uid: rank}
-- ARGV: 1 lot id, 2 user id, 3 masked name, 4 amount ('' = the minimum, for a
--       bid that only sets a maximum), 5 ref, 6 ref ttl, 7 stream maxlen,
--       8 max_amount ('' if none), 9 bids per second per user (0: no limit),
--       10 the bidder's pseudonym on this lot, 11 the receipt key id ('' = no receipt)
local lot, stream, refkey = KEYS[1], KEYS[2], KEYS[3]
local lot_id, uid, name = ARGV[1], ARGV[2], ARGV[3]
local maxlen = ARGV[7]
local channel = lot_channel(lot_id)

local cached = redis.call('GET', refkey)
if cached then return cached end

-- One limit per user across all of their sockets, HTTP and hall processes:
-- a fixed one-second window. Not stored under the ref, so the same bid may be
-- sent again once the window has passed.
local rate = tonumber(ARGV[9] or '0') or 0
if rate > 0 then
  local n = redis.call('INCR', KEYS[9])
  if n == 1 then redis.call('PEXPIRE', KEYS[9], 1000) end
  if n > rate then
    return cjson.encode({code = 'rate_limited', message = 'too many bids; slow down'})
  end
end

local function answer(t)
  local s = cjson.encode(t)
  redis.call('SET', refkey, s, 'EX', ARGV[6])
  return s
end
local function reject(code, message)
  return answer({code = code, message = message})
end

local f = redis.call('HMGET', lot, 'status', 'start', 'inc', 'price', 'leader',
                     'seq', 'deadline', 'win', 'by', 'count', 'reserve', 'pmax', 'leader_name',
                     'preempt')
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
local seq = tonumber(f[6] or '0')
local reserve = tonumber(f[11] or '0')
local leader_max = tonumber(f[12] or '0')
if leader_max < price then leader_max = price end
local max_amount = tonumber(ARGV[8])

-- Pre-emption (优先购买权, the court-auction rule): a holder wins a tie with
-- anyone who is not a holder, and between holders the lower rank wins; so a
-- holder may bid the current price itself. Ranks are read only on lots that
-- have holders ('preempt' set by load.lua / preempt.lua).
local NONE = math.huge
local my_rank, leader_rank = NONE, NONE
if f[14] == '1' then
  my_rank = tonumber(redis.call('HGET', KEYS[10], uid)) or NONE
  if leader ~= '' then leader_rank = tonumber(redis.call('HGET', KEYS[10], leader)) or NONE end
end
local outranks = my_rank < leader_rank  -- wins a tie with the standing maximum

if leader == uid then
  -- The leader cannot outbid themself, but may raise their private maximum.
  if max_amount and max_amount > leader_max then
    redis.call('HSET', lot, 'pmax', max_amount)
    return answer({accepted = true, seq = seq, price = price, deadline_ms = deadline,
                   max_amount = max_amount, leading = true})
  end
  return reject('already_leading', 'you are already the highest bidder')
end

local base, min
if price == 0 then
  base, min = start, start
elseif outranks then
  base, min = price, price
else
  base, min = price, price + increment_at(inc, price)
end
local amount = tonumber(ARGV[4]) or min
if amount < min then
  return reject('too_low', 'the minimum bid is ' .. string.format('%d', min))
end
local step = increment_at(inc, base)
if (amount - base) % step ~= 0 then
  return reject('invalid', 'a bid must be a whole number of increments of ' .. string.format('%d', step))
end
if max_amount and max_amount < amount then
  return reject('invalid', 'max_amount must be at least amount')
end
local my_max = max_amount or amount  -- a plain bid is a maximum equal to its amount

-- Proxy resolution. Each price the engine sets is a bid event of its own.
local placed = {}  -- {uid, name, amount}
local new_leader, new_leader_name, new_price, new_max
local function with_reserve(p, cap)
  -- A maximum that reaches the hidden reserve bids up to it at once.
  if reserve > 0 and p < reserve and cap >= reserve then return reserve end
  return p
end
if leader == '' or my_max > leader_max or (my_max == leader_max and outranks) then
  -- The challenger takes the lead. A standing proxy first bids its maximum.
  if leader ~= '' and leader_max > price then
    placed[#placed + 1] = {leader, f[13] or '', leader_max}
  end
  local p = amount
  if leader ~= '' then
    -- The least that beats the standing maximum: one increment above it, or
    -- the maximum itself for a holder who outranks its owner.
    local beat = leader_max
    if not outranks then beat = leader_max + increment_at(inc, leader_max) end
    p = math.max(amount, math.min(my_max, beat))
  end
  new_price = with_reserve(p, my_max)
  placed[#placed + 1] = {uid, name, new_price}
  new_leader, new_leader_name, new_max = uid, name, my_max
else
  -- The standing maximum holds (ties go to the earlier one): the challenger's
  -- bid is placed at its maximum, then the proxy answers one increment above.
  placed[#placed + 1] = {uid, name, my_max}
  local beat = my_max + increment_at(inc, my_max)
  if leader_rank < my_rank then beat = my_max end  -- a holder answers at the same price
  local p = math.min(leader_max, beat)
  new_price = with_reserve(p, leader_max)
  placed[#placed + 1] = {leader, f[13] or '', new_price}
  new_leader, new_leader_name, new_max = leader, f[13] or '', leader_max
end

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
local count = tonumber(f[10] or '0')
local my_seq, my_amount = seq, amount
for i, b in ipairs(placed) do
  seq = seq + 1
  count = count + 1
  if b[1] == uid then my_seq, my_amount = seq, b[3] end
  local next_min = b[3] + increment_at(inc, b[3])
  emit(stream, channel, lot_id, seq .. '-0', b[1], cjson.encode(
    {type = 'bid', lot_id = tonumber(lot_id), seq = seq, amount = b[3], bidder = b[2],
     at_ms = now, deadline_ms = deadline, next_min_bid = next_min,
     reserve_met = b[3] >= reserve, server_time_ms = now}), maxlen)
  -- The database copy: one stream for all lots, drained in batches by a
  -- worker through a consumer group, so nothing accepted is lost. One field
  -- "lot|seq|uid|amount|at|ref" (ref last: it may hold '|'), not six: fewer
  -- arguments here and fewer strings for the worker to read back.
  redis.call('XADD', KEYS[7], '*', 'b', string.format('%s|%d|%s|%d|%d|%s', lot_id, seq, b[1],
             b[3], now, b[1] == uid and ARGV[5] or 'proxy'))
end
redis.call('HSET', lot, 'price', new_price, 'leader', new_leader, 'leader_name', new_leader_name,
           'pmax', new_max, 'seq', seq, 'sub', 0, 'count', count, 'deadline', deadline,
           'last_bid_ms', now)
if extended then
  redis.call('HSET', lot, 'sub', 1)
  emit(stream, channel, lot_id, seq .. '-1', '', cjson.encode(
    {type = 'extended', lot_id = tonumber(lot_id), deadline_ms = deadline, server_time_ms = now}), maxlen)
end
-- Whoever held the lead and lost it hears `outbid` (a challenger beaten by a
-- proxy at once too); the notification worker reads the same from KEYS[8].
local loser = nil
if new_leader == uid then
  if leader ~= '' then loser = leader end
else
  loser = uid
end
if loser then
  redis.call('PUBLISH', user_channel(loser), cjson.encode(
    {type = 'outbid', lot_id = tonumber(lot_id), price = new_price, server_time_ms = now}))
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', 100000, '*', 'kind', 'outbid', 'uid', loser,
             'lot', lot_id, 'price', new_price, 'at', now)
end
-- The receipt's fields, canonical JSON (sorted keys, no spaces) written here
-- so the hall only signs these bytes (auction/receipts.py); it stays last.
local s = cjson.encode({accepted = true, seq = my_seq, price = new_price, deadline_ms = deadline,
                        leading = new_leader == uid, amount = my_amount, at_ms = now})
local kid = ARGV[11] or ''
if kid ~= '' then
  s = string.sub(s, 1, -2) .. string.format(
    ',"receipt":{"amount":%d,"at_ms":%d,"bidder_ref":"%s","kid":"%s","lot_id":%d,"seq":%d}}',
    my_amount, now, ARGV[10], kid, tonumber(lot_id), my_seq)
end
redis.call('SET', refkey, s, 'EX', ARGV[6])
return s
