-- Put a lot into Redis (on publish, or again after Redis lost its data).
-- Live state already present wins: only the static description is refreshed.
-- KEYS: 1 lot hash, 2 the lot's pre-emption holders
-- ARGV: 1 status, 2 session id, 3 start, 4 inc json, 5 reserve, 6 deadline,
--       7 window ms, 8 by ms, 9 info json, 10 seq, 11 price, 12 leader,
--       13 leader name, 14 count, 15 holders json [[uid, rank], ...]
local lot = KEYS[1]
local function holders()
  -- From the database's list, so a lot reloaded after Redis lost it keeps them.
  local list = cjson.decode(ARGV[15] or '[]')
  if #list == 0 or not KEYS[2] then return end
  redis.call('DEL', KEYS[2])
  for _, h in ipairs(list) do redis.call('HSET', KEYS[2], h[1], h[2]) end
  redis.call('HSET', lot, 'preempt', '1')
end
if redis.call('EXISTS', lot) == 1 then
  redis.call('HSET', lot, 'info', ARGV[9], 'inc', ARGV[4], 'reserve', ARGV[5],
             'win', ARGV[7], 'by', ARGV[8])
  local st = redis.call('HGET', lot, 'status')
  if st == 'draft' or st == 'scheduled' then
    redis.call('HSET', lot, 'status', ARGV[1], 'deadline', ARGV[6])
    holders()
  end
  return 0
end
redis.call('HSET', lot, 'status', ARGV[1], 'sid', ARGV[2], 'start', ARGV[3], 'inc', ARGV[4],
           'reserve', ARGV[5], 'deadline', ARGV[6], 'win', ARGV[7], 'by', ARGV[8],
           'info', ARGV[9], 'seq', ARGV[10], 'sub', 0, 'price', ARGV[11], 'leader', ARGV[12],
           'leader_name', ARGV[13], 'count', ARGV[14])
holders()
return 1
