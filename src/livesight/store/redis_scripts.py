"""The Lua scripts of store/redis_state.py: each is one atomic change of the cluster state.

Conventions: the last two KEYS are always `ls:seq` and `ls:chg`; ARGV[1] is the stream id; every
script that changes a record bumps the change log (`CHANGED`) so other nodes' mirrors see it.
"""

from __future__ import annotations

CHANGED = "redis.call('ZADD', KEYS[#KEYS], redis.call('INCR', KEYS[#KEYS - 1]), ARGV[1])\n"

# KEYS: rec, lease, own, claim, claims, seq, chg.
# ARGV: id, owner, created, ttl_s, expires, source, node, claim_ttl, limit, claim deadline
CREATE = (
    """
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[9]) then return -1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'created_at_ms', ARGV[3], 'ttl_seconds', ARGV[4],
  'expires_at_ms', ARGV[5], 'state', 'active', 'source', ARGV[6], 'node', ARGV[7])
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[7] .. '|' .. epoch, 'PX', ARGV[8])
redis.call('ZADD', KEYS[5], ARGV[10], ARGV[1])
"""
    + CHANGED
    + "return epoch"
)

# KEYS: rec, lease, seq, chg. ARGV: id, owner, expires
KEEPALIVE = (
    """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return -2 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'expires_at_ms', ARGV[3])
"""
    + CHANGED
    + "return 1"
)

# KEYS: rec, lease, tomb, claim, claims, seq, chg. ARGV: id, reason, ended_at, final ('' keeps), own prefix,
# max deadline ('' = unconditional; else only if the lease deadline is still <= it: a keepalive may have
# landed), '1' = only if no node holds the claim (node loss: the claim lapsed unrenewed)
END = (
    """
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline then return 0 end
if ARGV[6] ~= '' and tonumber(deadline) > tonumber(ARGV[6]) then return 0 end
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_at_ms', ARGV[3], 'end_reason', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'final', ARGV[4]) end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then redis.call('SREM', ARGV[5] .. owner, ARGV[1]) end
redis.call('DEL', KEYS[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
"""
    + CHANGED
    + "return 1"
)

# KEYS: rec, seq, chg. ARGV: id, final. A tombstone's facts, written by its owner once it froze them.
FINAL = (
    """
if redis.call('HGET', KEYS[1], 'state') ~= 'ended' then return 0 end
redis.call('HSET', KEYS[1], 'final', ARGV[2])
"""
    + CHANGED
    + "return 1"
)

# KEYS: rec, seq, chg. ARGV: id, facts. Only while active (a late publish must not revive a forgotten record).
FACTS = (
    """
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'facts', ARGV[2])
"""
    + CHANGED
    + "return 1"
)

# KEYS: rec, claim, lease, own, claims, seq, chg. ARGV: id, node|epoch, claim_ttl, node, epoch, then the
# record to restore when Redis lost it: owner, created, ttl_s, expires, source; then the claim deadline.
# Returns 1 renewed, 2 restored, 0 fenced (another node holds or took the claim), -1 ended.
RENEW = (
    """
local cur = redis.call('GET', KEYS[2])
if cur == ARGV[2] then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[5], ARGV[11], ARGV[1])
  return 1
end
if cur then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local st = redis.call('HMGET', KEYS[1], 'state', 'node', 'epoch')
  if st[1] ~= 'active' then return -1 end
  if st[2] ~= ARGV[4] or st[3] ~= ARGV[5] then return 0 end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('ZADD', KEYS[5], ARGV[11], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'owner', ARGV[6], 'created_at_ms', ARGV[7], 'ttl_seconds', ARGV[8],
  'expires_at_ms', ARGV[9], 'state', 'active', 'source', ARGV[10], 'node', ARGV[4], 'epoch', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[11], ARGV[1])
"""
    + CHANGED
    + "return 2"
)

# KEYS: rec, claim, claims, seq, chg. ARGV: id, node, claim_ttl, claim deadline.
# Take over a stream nobody holds: epoch + 1.
CLAIM = (
    """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return -1 end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2] .. '|' .. epoch, 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
"""
    + CHANGED
    + "return epoch"
)

# KEYS: claim, claims. ARGV: id, node|epoch. Give up a claim still held as node|epoch (a draining node in
# gateway mode): the claim's deadline becomes 0, so the next tick of a surviving node re-places the stream.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""

# KEYS: tomb, gone, seq, chg. ARGV: cutoff (ended before it: forget), record prefix, now, log cutoff
FORGET = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[2] .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[3]), id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 500)
for _, id in ipairs(old) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then redis.call('ZREM', KEYS[4], id) end
  redis.call('ZREM', KEYS[2], id)
end
return #ids
"""

# KEYS: seen, this node's counts. ARGV: owner, here, limit, node, counts prefix, ttl.
# Sum the owner's watches on every other node that published counts, add `here`; under the limit,
# count one more for this node at once (its next publish replaces the number with the truth).
ADMIT_WATCH = """
local total = tonumber(ARGV[2])
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if node ~= ARGV[4] then total = total + tonumber(redis.call('HGET', ARGV[5] .. node, ARGV[1]) or '0') end
end
if total >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], tonumber(ARGV[2]) + 1)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""
