"""Scripts over a node's whole share: sweeping a dead node, leaving, and re-asserting after a fault.

Each works in bounded steps, so no single call blocks Redis for long however large the share:
a sweep or a leave claims the node (`P:sweeping`) and then removes a bounded number of its index
entries per call (any live node may carry on an unfinished sweep); a re-assert registers the node
and then replaces its share chunk by chunk, each chunk a difference against what Redis holds, so
a user's count never dips to zero on the way and only real membership changes are announced.
"""

from __future__ import annotations

from revurb.scaling.lua_presence import ANNOUNCE
from revurb.scaling.lua_webhooks import WEBHOOK

_DROP_ENTRY = """
local function drop_entry(p, bus_max, node, raw)
  local e = cjson.decode(raw)
  if e[1] == 'c' then
    redis.call('HDEL', p .. ':conn:' .. e[2], node)
  elseif e[1] == 's' then
    local k = p .. ':subs:' .. e[2] .. ':' .. e[3]
    local had = redis.call('HDEL', k, node)
    if redis.call('HLEN', k) == 0 then
      redis.call('DEL', k)
      redis.call('SREM', p .. ':channels:' .. e[2], e[3])
      if had == 1 then occupancy_hook(p, e[2], e[3], false) end
    end
  elseif e[1] == 'p' then
    local base = p .. ':presence:' .. e[2] .. ':' .. e[3]
    local mine = base .. ':node:' .. node
    local flat = redis.call('HGETALL', mine)
    for i = 1, #flat, 2 do
      local user = flat[i]
      local total = redis.call('HINCRBY', base .. ':totals', user, -tonumber(flat[i + 1]))
      if total <= 0 then
        redis.call('HDEL', base .. ':totals', user)
        redis.call('HDEL', base .. ':users', user)
        announce(p, bus_max, e[2], e[3], user, nil)
      end
    end
    redis.call('DEL', mine)
    forget_version_if_empty(p, e[2], e[3])
  end
end
"""

#: ARGV: prefix, dead node, tombstone seconds. Claims a node whose heartbeat expired, once: it
#: leaves `P:nodes` for `P:sweeping`. Returns 1 if this call claimed it.
SWEEP_CLAIM = """
local p, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. ':node:' .. node) == 1 then return 0 end
if redis.call('SREM', p .. ':nodes', node) == 0 then return 0 end
redis.call('SET', p .. ':swept:' .. node, '1', 'EX', ARGV[3])
redis.call('SADD', p .. ':sweeping', node)
return 1
"""

#: ARGV: prefix, node. A node leaving on shutdown: unregistered, its share queued for removal.
LEAVE = """
local p, node = ARGV[1], ARGV[2]
redis.call('SREM', p .. ':nodes', node)
redis.call('DEL', p .. ':node:' .. node)
redis.call('SADD', p .. ':sweeping', node)
return 1
"""

#: ARGV: prefix, bus max length, node, entries per call. Removes up to that many entries of a
#: claimed node's share, announcing users who left with them. Returns the entries left.
SHARE_DROP = (
    ANNOUNCE
    + _DROP_ENTRY
    + """
local p, bus_max, node = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SISMEMBER', p .. ':sweeping', node) == 0 then return 0 end
local index = p .. ':index:' .. node
for _, raw in ipairs(redis.call('SPOP', index, ARGV[4])) do drop_entry(p, bus_max, node, raw) end
local left = redis.call('SCARD', index)
if left == 0 then redis.call('SREM', p .. ':sweeping', node) end
return left
"""
)

#: ARGV: prefix, node, heartbeat ms. Registers the node (ending any sweep of it).
#: Returns {1 if others had been told it was dead, the index entries Redis holds for it}.
REASSERT_START = """
local p, node = ARGV[1], ARGV[2]
redis.call('SET', p .. ':node:' .. node, '1', 'PX', ARGV[3])
redis.call('SADD', p .. ':nodes', node)
redis.call('SREM', p .. ':sweeping', node)
local swept = redis.call('DEL', p .. ':swept:' .. node)
return {swept, redis.call('SMEMBERS', p .. ':index:' .. node)}
"""

#: ARGV: prefix, bus max length, node, then index entries the node no longer holds: removed.
REASSERT_DROP = (
    ANNOUNCE
    + _DROP_ENTRY
    + """
local p, bus_max, node = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  redis.call('SREM', p .. ':index:' .. node, ARGV[i])
  drop_entry(p, bus_max, node, ARGV[i])
end
return 0
"""
)

#: ARGV: prefix, node, JSON [[index entry, app, channel or false, count], ...]: the node's socket
#: counts (channel false) and subscription counts, set absolutely (a channel they occupy anew
#: records its webhook event).
REASSERT_COUNTS = (
    WEBHOOK
    + """
local p, node = ARGV[1], ARGV[2]
local index = p .. ':index:' .. node
for _, c in ipairs(cjson.decode(ARGV[3])) do
  if c[3] == false then
    redis.call('HSET', p .. ':conn:' .. c[2], node, c[4])
  else
    local k = p .. ':subs:' .. c[2] .. ':' .. c[3]
    local empty = redis.call('EXISTS', k) == 0
    redis.call('HSET', k, node, c[4])
    redis.call('SADD', p .. ':channels:' .. c[2], c[3])
    if empty and tonumber(c[4]) > 0 then occupancy_hook(p, c[2], c[3], true) end
  end
  redis.call('SADD', index, c[1])
end
return 0
"""
)

#: ARGV: prefix, bus max length, node, JSON [[index entry, app, channel, {user: [info, count]}]]:
#: the node's presence sockets per channel, applied as a difference; real changes are announced.
REASSERT_PRESENCE = (
    ANNOUNCE
    + """
local p, bus_max, node = ARGV[1], ARGV[2], ARGV[3]
local index = p .. ':index:' .. node
for _, ch in ipairs(cjson.decode(ARGV[4])) do
  local app, channel = ch[2], ch[3]
  local base = p .. ':presence:' .. app .. ':' .. channel
  local mine = base .. ':node:' .. node
  local old = {}
  local flat = redis.call('HGETALL', mine)
  for i = 1, #flat, 2 do old[flat[i]] = tonumber(flat[i + 1]) end
  for user, e in pairs(ch[4]) do
    local delta = e[2] - (old[user] or 0)
    old[user] = nil
    redis.call('HSET', base .. ':users', user, e[1])
    if delta ~= 0 then
      redis.call('HSET', mine, user, e[2])
      local total = redis.call('HINCRBY', base .. ':totals', user, delta)
      if total > 0 and total - delta <= 0 then announce(p, bus_max, app, channel, user, e[1]) end
    end
  end
  for user, count in pairs(old) do
    redis.call('HDEL', mine, user)
    local total = redis.call('HINCRBY', base .. ':totals', user, -count)
    if total <= 0 then
      redis.call('HDEL', base .. ':totals', user)
      redis.call('HDEL', base .. ':users', user)
      announce(p, bus_max, app, channel, user, nil)
    end
  end
  forget_version_if_empty(p, app, channel)
  redis.call('SADD', index, ch[1])
end
return 0
"""
)

#: ARGV: prefix, now (unix ms), JSON [[app, channel, frame, expiry ms], ...]: live cache payloads
#: put back where Redis lost them (never over a newer one).
REASSERT_CACHE = """
local p, now = ARGV[1], tonumber(ARGV[2])
for _, c in ipairs(cjson.decode(ARGV[3])) do
  local left = tonumber(c[4]) - now
  if left > 0 then
    redis.call('SET', p .. ':cache:' .. c[1] .. ':' .. c[2], c[3], 'PX', math.floor(left), 'NX')
  end
end
return 0
"""
