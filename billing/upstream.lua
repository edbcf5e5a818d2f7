-- The org's limits at Anthropic, learned from response headers, shared by every process.
-- Each hash (one per model and axis) holds limit, remaining and the time `at` they were true.
-- Anthropic's buckets refill continuously, so the room now is remaining + limit * elapsed / 60 s,
-- capped at limit. A call that fits takes its cost; one that does not gets the wait until it fits.
--
-- KEYS: one hash per axis.  ARGV: "observe", then limit,remaining per key, ttl_ms
--                           or "take", then cost per key.  Returns the wait in microseconds.
--                           or "give", then cost per key: a take given back (the call was refused).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = 60000000

if ARGV[1] == 'observe' then
  local ttl = tonumber(ARGV[2 + 2 * #KEYS])
  for i = 1, #KEYS do
    redis.call('HSET', KEYS[i], 'limit', ARGV[2 * i], 'remaining', ARGV[2 * i + 1], 'at', string.format('%.0f', now))
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  return 0
end

if ARGV[1] == 'give' then
  for i = 1, #KEYS do
    local h = redis.call('HMGET', KEYS[i], 'limit', 'remaining', 'at')
    if h[1] then
      local limit, remaining, at = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
      local available = math.min(limit, remaining + limit * (now - at) / period + tonumber(ARGV[i + 1]))
      redis.call('HSET', KEYS[i], 'remaining', string.format('%.3f', available), 'at', string.format('%.0f', now))
    end
  end
  return 0
end

local wait = 0
local room = {}
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'limit', 'remaining', 'at')
  local cost = tonumber(ARGV[i + 1])
  if h[1] then
    local limit, remaining, at = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
    local available = math.min(limit, remaining + limit * (now - at) / period)
    room[i] = available
    local need = math.min(cost, limit)  -- a call larger than the bucket waits for a full bucket only
    if available < need then
      local w = (need - available) * period / limit
      if w > wait then wait = w end
    end
  end
end
if wait == 0 then
  for i = 1, #KEYS do
    if room[i] then
      redis.call('HSET', KEYS[i], 'remaining', string.format('%.3f', room[i] - tonumber(ARGV[i + 1])), 'at', string.format('%.0f', now))
    end
  end
end
return math.ceil(wait)
