"""Lua scripts that keep the cluster counts in Redis consistent: each runs atomically on the server.

Keys (P is the configured prefix, `REVERB_SCALING_CHANNEL`; N a node id; A an app id; C a channel):
`P:bus` the stream every node reads, `P:nodes` set of registered nodes, `P:node:N` heartbeat,
`P:swept:N` tombstone of a swept node, `P:sweeping` nodes whose share is still being removed,
`P:index:N` set of JSON entries naming what N holds a share of, `P:conn:A` hash node -> sockets,
`P:channels:A` set of occupied channels, `P:subs:A:C` hash node -> subscriptions,
`P:presence:A:C:users` hash user -> info JSON, `P:presence:A:C:totals` hash user -> sockets,
`P:presence:A:C:node:N` hash user -> sockets of N, `P:presence:A:C:version` the bus id of the
channel's last membership change, `P:cache:A:C` the last event of a cache channel, `P:webhooks`
the webhook events waiting for delivery (see `lua_webhooks.py`).
Presence scripts live in `lua_presence.py`, the sweep and re-assert of a node's share in `lua_share.py`.
"""

from __future__ import annotations

from revurb.scaling.lua_webhooks import WEBHOOK

#: KEYS: conn hash, index. ARGV: node, index entry, delta. Returns the app's socket count.
CONNECTION = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[2])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
return total
"""

#: KEYS: subs hash, channels set, index. ARGV: node, index entry, delta, channel, prefix, app.
#: Returns the channel's subscription count across the cluster; records the webhook event of a
#: channel that became occupied or vacated.
SUBSCRIPTION = (
    WEBHOOK
    + """
local delta = tonumber(ARGV[3])
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], delta)
-- A removal the node had not counted changes nothing.
local counted = n >= 0
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
if counted and ((delta > 0 and total == delta) or (delta < 0 and total == 0)) then
  occupancy_hook(ARGV[5], ARGV[6], ARGV[4], delta > 0)
end
return total
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
