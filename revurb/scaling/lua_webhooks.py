"""Lua helpers that record webhook events in the script that decides them.

A channel's occupancy and a presence user's membership change inside one atomic script (see
`lua.py`, `lua_presence.py`, `lua_share.py`); the script appends the webhook event to `P:webhooks`
in the same step, so the cluster records exactly one event per change, in the order the changes
happened, and a node that dies a moment later loses none. The stream exists only once some node
serves an app with webhooks (it creates the consumer group), so a cluster without webhooks pays
one EXISTS per change. Entries hold the app id (`a`) and the event as JSON (`e`).
"""

from __future__ import annotations

#: The stream's length bound (approximate, as MAXLEN ~): events beyond it, oldest first, are lost.
STREAM_MAX = 100_000
#: The stream below the prefix, its consumer group, and the lease of the node that delivers.
STREAM = "webhooks"
GROUP = "revurb"
LEASE = "webhooks:lease"

WEBHOOK = f"""
local function webhook(p, app, event)
  local stream = p .. ':{STREAM}'
  if redis.call('EXISTS', stream) == 1 then
    redis.call('XADD', stream, 'MAXLEN', '~', {STREAM_MAX}, '*', 'a', app, 'e', event)
  end
end

local function occupancy_hook(p, app, channel, occupied)
  local name = occupied and 'channel_occupied' or 'channel_vacated'
  webhook(p, app, '{{"name":"' .. name .. '","channel":' .. cjson.encode(channel) .. '}}')
end

local function member_hook(p, app, channel, user, added)
  local name = added and 'member_added' or 'member_removed'
  local event = '{{"name":"' .. name .. '","channel":' .. cjson.encode(channel)
  webhook(p, app, event .. ',"user_id":' .. cjson.encode(user) .. '}}')
end
"""

#: KEYS: lease. ARGV: node, lease ms. Takes the lease if free, or renews it if this node holds it;
#: returns 1 when this node holds it now. One node delivers at a time, so events reach a receiver
#: in the stream's order (a consumer group alone would share them out among the nodes).
LEASE_TAKE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

#: KEYS: lease. ARGV: node. Gives the lease up if this node holds it (a node stopping).
LEASE_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
