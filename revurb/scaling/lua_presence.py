"""Presence scripts: a user's sockets counted per node and cluster-wide, and the membership change
announced on the bus in the same atomic step.

A change that adds a user to a roster or removes one is appended to the bus stream by the script
that makes it, and the entry's id is stored as the channel's version. So the bus carries the
membership changes of a channel in exactly the order they happened, every node sees them in that
order, and a roster read together with its version says which changes it already holds.
"""

from __future__ import annotations

from revurb.scaling.lua_webhooks import WEBHOOK

#: Lua helpers shared by every script that changes a roster. `bus_max` is the stream's length bound.
#: Every announced change also records its webhook event.
ANNOUNCE = (
    WEBHOOK
    + """
local function version_key(p, app, channel)
  return p .. ':presence:' .. app .. ':' .. channel .. ':version'
end

local function publish_change(p, bus_max, app, channel, payload)
  local id = redis.call('XADD', p .. ':bus', 'MAXLEN', '~', bus_max, '*', 'm', payload)
  redis.call('SET', version_key(p, app, channel), id)
end

-- A change decided inside a script (sweep, re-assert): header and frame are built here.
-- `info` is the user's info as JSON, or nil when the user left.
local function announce(p, bus_max, app, channel, user, info)
  local header = {type = 'member', app = app, channel = channel, user_id = user, added = info ~= nil}
  local data, event
  if info then
    event = 'pusher_internal:member_added'
    data = '{"user_id":' .. cjson.encode(user) .. ',"user_info":' .. info .. '}'
  else
    event = 'pusher_internal:member_removed'
    data = '{"user_id":' .. cjson.encode(user) .. '}'
  end
  local frame = cjson.encode({event = event, channel = channel, data = data})
  publish_change(p, bus_max, app, channel, cjson.encode(header) .. '\\n' .. frame)
  member_hook(p, app, channel, user, info ~= nil)
end

-- The roster emptied: its version goes too (the next change gets a later bus id anyway).
local function forget_version_if_empty(p, app, channel)
  if redis.call('EXISTS', p .. ':presence:' .. app .. ':' .. channel .. ':users') == 0 then
    redis.call('DEL', version_key(p, app, channel))
  end
end
"""
)

#: KEYS: users hash, totals hash, node hash, index. ARGV: index entry, user id, user info JSON,
#: prefix, bus max length, app, channel, bus payload announcing the user (header + frame).
#: Returns 1 when this is the user's first socket on the channel, cluster-wide (then announced).
MEMBER_ADD = (
    ANNOUNCE
    + """
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
if total == 1 then
  publish_change(ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  member_hook(ARGV[4], ARGV[6], ARGV[7], ARGV[2], true)
  return 1
end
return 0
"""
)

#: Same KEYS; ARGV: index entry, user id, prefix, bus max length, app, channel, bus payload.
#: Returns 1 when it was the user's last socket, cluster-wide (then announced).
MEMBER_REMOVE = (
    ANNOUNCE
    + """
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
  publish_change(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
  member_hook(ARGV[3], ARGV[5], ARGV[6], ARGV[2], false)
  forget_version_if_empty(ARGV[3], ARGV[5], ARGV[6])
  return 1
end
return 0
"""
)
