-- A lot's state and the events after a client's last seen seq, read in one
-- atomic step so the replay and the live feed meet without a gap.
-- KEYS: 1 lot hash, 2 lot stream
-- ARGV: 1 since seq ('' = no replay), 2 max events
local state = redis.call('HGETALL', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local events = {}
if ARGV[1] ~= '' then
  -- "After S" = from bid S+1 on; events that followed bid S itself are
  -- summed up by the snapshot's state.
  events = redis.call('XRANGE', KEYS[2], string.format('%.0f', tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
end
-- Where the stream stands now, so the caller can drop live duplicates.
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
return {state, now, events, last_id}
