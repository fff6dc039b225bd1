"""Lua scripts for the Redis quota store: the algorithms of ``buckets``/``quota``,
run atomically inside Redis on Redis's clock (so replicas' clocks do not matter).

Per tenant the keys are ``{prefix}t:{tenant}:rpm|tpm|budget|inflight|usage``.
Replies are integers: ``{code, retry_after_ms}``; code 0 admits, 1 requests/min,
2 tokens/min, 3 budget, 4 concurrency.
"""

from __future__ import annotations

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function refill(key, cap)
  local v = redis.call('HMGET', key, 'l', 't')
  local l, ts = tonumber(v[1]), tonumber(v[2])
  if l == nil or ts == nil then return cap end
  return math.min(cap, l + math.max(0, now - ts) * cap / 60)
end
local function store(key, level, cap)
  redis.call('HSET', key, 'l', string.format('%.6f', level), 't', string.format('%.6f', now))
  local debt_s = 0
  if level < 0 then debt_s = math.ceil(-level * 60 / cap) end
  redis.call('EXPIRE', key, 120 + debt_s)
end
"""

# KEYS: rpm, tpm, budget, inflight. ARGV: rpm, tpm, budget, period_s, max_concurrent (0: none).
ADMIT = (
    _PRELUDE
    + """
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local budget, period, maxc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if maxc > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= maxc then
  return {4, 1000}
end
if budget > 0 then
  local v = redis.call('HMGET', KEYS[3], 'w', 'u')
  local w = math.floor(now / period)
  if tonumber(v[1]) == w and tonumber(v[2]) >= budget then
    return {3, math.ceil(((w + 1) * period - now) * 1000)}
  end
end
if tpm > 0 then
  local l = refill(KEYS[2], tpm)
  if l <= 0 then return {2, math.ceil((0.001 - l) * 60000 / tpm)} end
end
if rpm > 0 then
  local l = refill(KEYS[1], rpm)
  if l < 1 then return {1, math.ceil((1 - l) * 60000 / rpm)} end
  store(KEYS[1], l - 1, rpm)
end
if maxc > 0 then
  redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], 3600)
end
return {0, 0}
"""
)

# KEYS: tpm, budget, inflight, usage.
# ARGV: tokens, tpm, budget (0: none), period_s, release (0/1), prompt, generated, cost_usd.
SETTLE = (
    _PRELUDE
    + """
local tokens, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local budget, period = tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[5] == '1' and tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then
  redis.call('DECR', KEYS[3])
end
if tokens > 0 and tpm > 0 then
  store(KEYS[1], refill(KEYS[1], tpm) - tokens, tpm)
end
if tokens > 0 and budget > 0 then
  local w = math.floor(now / period)
  local v = redis.call('HGET', KEYS[2], 'w')
  if tonumber(v) ~= w then
    redis.call('HSET', KEYS[2], 'w', w, 'u', tokens)
  else
    redis.call('HINCRBY', KEYS[2], 'u', tokens)
  end
  redis.call('EXPIRE', KEYS[2], math.ceil(period) + 60)
end
redis.call('HINCRBY', KEYS[4], 'requests', 1)
redis.call('HINCRBY', KEYS[4], 'prompt_tokens', ARGV[6])
redis.call('HINCRBY', KEYS[4], 'generation_tokens', ARGV[7])
redis.call('HINCRBYFLOAT', KEYS[4], 'cost_usd', ARGV[8])
return 0
"""
)
