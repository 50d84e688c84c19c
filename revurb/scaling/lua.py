"""Lua scripts that keep the cluster state in Redis consistent: each runs atomically on the server.

Keys (P is the configured prefix, `REVERB_SCALING_CHANNEL`; N a node id; A an app id; C a channel):
`P:nodes` set of registered nodes, `P:node:N` heartbeat, `P:swept:N` tombstone of a swept node,
`P:index:N` set of JSON entries naming what N holds a share of, `P:conn:A` hash node -> sockets,
`P:channels:A` set of occupied channels, `P:subs:A:C` hash node -> subscriptions,
`P:presence:A:C:users` hash user -> info JSON, `P:presence:A:C:totals` hash user -> sockets,
`P:presence:A:C:node:N` hash user -> sockets of N, `P:cache:A:C` the last event of a cache channel.
"""

from __future__ import annotations

#: KEYS: conn hash, index. ARGV: node, index entry, delta. Returns the app's socket count.
CONNECTION = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[2])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
return total
"""

#: KEYS: subs hash, channels set, index. ARGV: node, index entry, delta, channel.
#: Returns the channel's subscription count across the cluster.
SUBSCRIPTION = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[2])
else
  redis.call('SADD', KEYS[3], ARGV[2])
end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
if total > 0 then
  redis.call('SADD', KEYS[2], ARGV[4])
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
end
return total
"""

#: KEYS: users hash, totals hash, node hash, index. ARGV: index entry, user id, user info JSON.
#: Returns 1 when this is the user's first socket on the channel, cluster-wide.
MEMBER_ADD = """
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
if total == 1 then return 1 end
return 0
"""

#: Same KEYS and ARGV (no info). Returns 1 when it was the user's last socket, cluster-wide.
MEMBER_REMOVE = """
local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if mine <= 0 then return 0 end
if mine == 1 then
  redis.call('HDEL', KEYS[3], ARGV[2])
  if redis.call('HLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
else
  redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
end
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if total <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# Shared by SWEEP and REASSERT: take node N's whole share out of the cluster state.
# `seen` collects presence users touched, as "app\nchannel" -> {user -> total before}.
_REMOVE_SHARE = """
local function presence_base(p, app, channel)
  return p .. ':presence:' .. app .. ':' .. channel
end

local function remove_share(p, node, seen)
  local index = p .. ':index:' .. node
  for _, raw in ipairs(redis.call('SMEMBERS', index)) do
    local e = cjson.decode(raw)
    if e[1] == 'c' then
      redis.call('HDEL', p .. ':conn:' .. e[2], node)
    elseif e[1] == 's' then
      local k = p .. ':subs:' .. e[2] .. ':' .. e[3]
      redis.call('HDEL', k, node)
      if redis.call('HLEN', k) == 0 then
        redis.call('DEL', k)
        redis.call('SREM', p .. ':channels:' .. e[2], e[3])
      end
    elseif e[1] == 'p' then
      local base = presence_base(p, e[2], e[3])
      local mine = base .. ':node:' .. node
      local flat = redis.call('HGETALL', mine)
      local group = e[2] .. '\\n' .. e[3]
      seen[group] = seen[group] or {}
      for i = 1, #flat, 2 do
        local user = flat[i]
        if seen[group][user] == nil then
          seen[group][user] = tonumber(redis.call('HGET', base .. ':totals', user) or '0')
        end
        local total = redis.call('HINCRBY', base .. ':totals', user, -tonumber(flat[i + 1]))
        if total <= 0 then
          redis.call('HDEL', base .. ':totals', user)
          redis.call('HDEL', base .. ':users', user)
        end
      end
      redis.call('DEL', mine)
    end
  end
  redis.call('DEL', index)
end

-- Users whose presence flipped: {app, channel, user, info} for joins, {app, channel, user} for leaves.
local function changes(p, seen)
  local added, removed = {}, {}
  for group, users in pairs(seen) do
    local cut = string.find(group, '\\n', 1, true)
    local app, channel = string.sub(group, 1, cut - 1), string.sub(group, cut + 1)
    local base = presence_base(p, app, channel)
    for user, before in pairs(users) do
      local after = tonumber(redis.call('HGET', base .. ':totals', user) or '0')
      if before > 0 and after <= 0 then
        table.insert(removed, app); table.insert(removed, channel); table.insert(removed, user)
      elseif before <= 0 and after > 0 then
        table.insert(added, app); table.insert(added, channel); table.insert(added, user)
        table.insert(added, redis.call('HGET', base .. ':users', user))
      end
    end
  end
  return added, removed
end
"""

#: ARGV: prefix, dead node, tombstone seconds. Removes a node whose heartbeat expired, once.
#: Returns the flat {app, channel, user, ...} list of users who left with it.
SWEEP = (
    _REMOVE_SHARE
    + """
local p, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. ':node:' .. node) == 1 then return {} end
if redis.call('SREM', p .. ':nodes', node) == 0 then return {} end
local seen = {}
remove_share(p, node, seen)
redis.call('SET', p .. ':swept:' .. node, '1', 'EX', ARGV[3])
local _, removed = changes(p, seen)
return removed
"""
)

#: ARGV: prefix, node. A node leaving on shutdown: same as a sweep, without the tombstone.
LEAVE = (
    _REMOVE_SHARE
    + """
local p, node = ARGV[1], ARGV[2]
redis.call('SREM', p .. ':nodes', node)
redis.call('DEL', p .. ':node:' .. node)
local seen = {}
remove_share(p, node, seen)
local _, removed = changes(p, seen)
return removed
"""
)

#: ARGV: prefix, node, heartbeat ms, this node's share as JSON (see `Mirror.to_json`), now (unix ms).
#: Replaces the node's share with what it really holds, registers it, re-puts its cache payloads.
#: Returns {swept (1 if others had been told it was dead), added flat list, removed flat list}.
REASSERT = (
    _REMOVE_SHARE
    + """
local p, node, ttl = ARGV[1], ARGV[2], ARGV[3]
local share = cjson.decode(ARGV[4])
local now = tonumber(ARGV[5])
local index = p .. ':index:' .. node
local seen = {}
for app, channels in pairs(share.p) do
  for channel, users in pairs(channels) do
    local group = app .. '\\n' .. channel
    seen[group] = seen[group] or {}
    local totals = presence_base(p, app, channel) .. ':totals'
    for user, _ in pairs(users) do
      seen[group][user] = tonumber(redis.call('HGET', totals, user) or '0')
    end
  end
end
remove_share(p, node, seen)
for app, count in pairs(share.c) do
  redis.call('HSET', p .. ':conn:' .. app, node, count)
  redis.call('SADD', index, cjson.encode({'c', app}))
end
for app, channels in pairs(share.s) do
  for channel, count in pairs(channels) do
    redis.call('HINCRBY', p .. ':subs:' .. app .. ':' .. channel, node, count)
    redis.call('SADD', p .. ':channels:' .. app, channel)
    redis.call('SADD', index, cjson.encode({'s', app, channel}))
  end
end
for app, channels in pairs(share.p) do
  for channel, users in pairs(channels) do
    local base = presence_base(p, app, channel)
    for user, entry in pairs(users) do
      redis.call('HINCRBY', base .. ':node:' .. node, user, entry[2])
      redis.call('HINCRBY', base .. ':totals', user, entry[2])
      redis.call('HSET', base .. ':users', user, entry[1])
    end
    redis.call('SADD', index, cjson.encode({'p', app, channel}))
  end
end
for _, cached in ipairs(share.k) do
  local left = tonumber(cached[4]) - now
  if left > 0 then
    redis.call('SET', p .. ':cache:' .. cached[1] .. ':' .. cached[2], cached[3], 'PX', left, 'NX')
  end
end
redis.call('SET', p .. ':node:' .. node, '1', 'PX', ttl)
redis.call('SADD', p .. ':nodes', node)
local swept = redis.call('DEL', p .. ':swept:' .. node)
local added, removed = changes(p, seen)
return {swept, added, removed}
"""
)

#: ARGV: prefix, node, heartbeat ms. Refreshes the heartbeat; returns 0 when the node must re-assert
#: its share (its key had expired, it was swept, or Redis lost its data).
HEARTBEAT = """
local p, node = ARGV[1], ARGV[2]
local alive = redis.call('EXISTS', p .. ':node:' .. node)
redis.call('SET', p .. ':node:' .. node, '1', 'PX', ARGV[3])
if alive == 1 and redis.call('SISMEMBER', p .. ':nodes', node) == 1 then return 1 end
return 0
"""
