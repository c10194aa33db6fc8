-- Register a pre-emption holder (优先购买权人) of a lot that is not open yet.
-- KEYS: 1 lot hash, 2 the lot's holders {uid: rank}
-- ARGV: 1 user id, 2 rank
-- Returns 1, or 0 when the lot is open or over (holders are fixed from the
-- first bid on: bid.lua decides ties by them).
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'draft' and status ~= 'scheduled' then return 0 end
if status then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[1], 'preempt', '1')
end
return 1
