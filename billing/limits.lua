-- Gateway rate limits: every bucket that applies to one request, checked and taken in ONE call,
-- so the decision is atomic across every web and worker process.
--
-- Rate buckets use GCRA (a token bucket stored as one number, the "theoretical arrival time"):
-- a bucket of `limit` units per 60 s emits one unit every T = 60 s / limit; taking `cost` units
-- moves TAT forward by cost * T, and the take is allowed while TAT - now <= 60 s. Tokens are
-- weighted costs, and a later correction is just another move of TAT.
-- Concurrency buckets are sorted sets of ticket ids scored by lease expiry, so a slot held by a
-- dead process frees itself when its lease runs out.
--
-- KEYS: R rate keys, then C concurrency keys.
-- acquire: ARGV = "acquire", R, ticket, lease_us, then limit,cost per rate key, then limit per concurrency key
--   returns {allowed (0|1), retry_after_us, then remaining,reset_us per rate key, then in_use per concurrency key}
-- finish:  ARGV = "finish", R, ticket, then limit,delta per rate key (delta may be negative: a refund)

local period = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local r = tonumber(ARGV[2])
local ticket = ARGV[3]

local function stored_tat(key)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  return tat
end

local function store_tat(key, tat)
  local ttl_ms = math.ceil((tat - now) / 1000) + 1000
  redis.call('SET', key, string.format('%.0f', tat), 'PX', ttl_ms)
end

if mode == 'finish' then
  for i = 1, r do
    local limit = tonumber(ARGV[3 + 2 * i - 1])
    local delta = tonumber(ARGV[3 + 2 * i])
    local tat = stored_tat(KEYS[i]) + delta * period / limit
    if tat < now then tat = now end
    store_tat(KEYS[i], tat)
  end
  for j = r + 1, #KEYS do
    redis.call('ZREM', KEYS[j], ticket)
  end
  return 1
end

local lease = tonumber(ARGV[4])
local allowed = 1
local retry = 0
local state = {}
for i = 1, r do
  local limit = tonumber(ARGV[4 + 2 * i - 1])
  local cost = tonumber(ARGV[4 + 2 * i])
  local emission = period / limit
  local tat = stored_tat(KEYS[i])
  local new_tat = tat + cost * emission
  local wait = new_tat - period - now
  if cost > limit then
    -- Larger than the whole bucket: let it through only into an idle bucket, then it pays the debt.
    wait = tat - now
  end
  if wait > 1 then  -- 1 us of slack for floating-point emission intervals such as 60 s / 7
    allowed = 0
    if wait > retry then retry = wait end
  end
  state[i] = {tat, new_tat, emission}
end

local base = 4 + 2 * r
local in_use = {}
for j = 1, #KEYS - r do
  local key = KEYS[r + j]
  local limit = tonumber(ARGV[base + j])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  in_use[j] = redis.call('ZCARD', key)
  if in_use[j] >= limit then
    allowed = 0
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local wait = math.min(1000000, tonumber(oldest[2]) - now)
    if wait > retry then retry = wait end
  end
end

local out = {allowed, math.ceil(retry)}
for i = 1, r do
  local tat = state[i][1]
  if allowed == 1 then
    tat = state[i][2]
    store_tat(KEYS[i], tat)
  end
  local remaining = math.floor((period - (tat - now)) / state[i][3])
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(tat - now)
end
for j = 1, #KEYS - r do
  local key = KEYS[r + j]
  if allowed == 1 then
    redis.call('ZADD', key, now + lease, ticket)
    redis.call('PEXPIRE', key, math.ceil(lease / 1000))
    in_use[j] = in_use[j] + 1
  end
  out[#out + 1] = in_use[j]
end
return out
