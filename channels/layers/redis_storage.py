"""What :class:`channels.layers.redis.RedisChannelLayer` keeps in Redis, and how it writes and
reads it: the envelope, the Lua scripts, the bounded BLPOP and one event loop's connections.

An entry of a channel's list is an *envelope*::

    <13-digit deadline in ms since the epoch><targets>\\n<payload>

``targets`` is empty for an ordinary channel and lists the comma-separated process-local
channels the entry is for on a process's shared list (commas never appear in names).  Every
write goes through :data:`SEND_SCRIPT`, which drops expired envelopes from the head of each
list (their deadline is their first 13 bytes), checks the list against its capacity, appends
and refreshes the key's TTL, atomically per shard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from channels.layers.redis_cluster import ClusterSpec
from channels.layers.redis_common import DEADLINE_DIGITS, HostSpec, make_client

# Seconds a BLPOP blocks before the receive loop goes round again (must stay below the
# client's socket timeout).
BLOCK_SECONDS = 2
BLOCK_GRACE = 10  # extra seconds before a silent BLPOP connection is considered dead

# KEYS[i]: list of channel i.  ARGV[1]: payload, ARGV[2]: key TTL (s), ARGV[3]: now (ms),
# ARGV[2 + 2i]: capacity of list i, ARGV[3 + 2i]: envelope header for list i.
# Returns the (1-based) indexes of the lists that were full.
SEND_SCRIPT = """
local payload = ARGV[1]
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local full = {}
for i, key in ipairs(KEYS) do
  while true do
    local head = redis.call('LINDEX', key, 0)
    if not head or tonumber(string.sub(head, 1, 13)) > now then break end
    redis.call('LPOP', key)
  end
  if redis.call('LLEN', key) >= tonumber(ARGV[2 + 2 * i]) then
    full[#full + 1] = i
  else
    redis.call('RPUSH', key, ARGV[3 + 2 * i] .. payload)
    redis.call('EXPIRE', key, ttl)
  end
end
return full
"""


# KEYS[1]: a group's sorted set.  ARGV[1]: oldest score still a member.  Returns the members
# joined by commas (never part of a name): ONE bulk string instead of one per member.  redis-py
# parses replies in Python, so with hundreds of members the per-member parse cost dominated
# group_send (figures in benchmarks/micro/RESULTS.md, "Redis layer: group members in one reply").
GROUP_MEMBERS_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return table.concat(redis.call('ZRANGE', KEYS[1], 0, -1), ',')
"""


def envelope_header(deadline_ms: int, targets: str) -> bytes:
    """Everything of an envelope before its payload."""
    return b"%013d%s\n" % (deadline_ms, targets.encode("ascii"))


def split_envelope(raw: bytes) -> tuple[int, str, bytes]:
    """``(deadline in ms, targets, payload)`` of one envelope."""
    newline = raw.index(b"\n", DEADLINE_DIGITS)
    deadline = int(raw[:DEADLINE_DIGITS])
    return deadline, raw[DEADLINE_DIGITS:newline].decode("ascii"), raw[newline + 1 :]


async def blpop(client: Redis, key: str) -> Any:
    """BLPOP with a client-side bound (a dead connection cannot block us forever), then
    honour a cancellation that something underneath may have swallowed."""
    try:
        async with asyncio.timeout(BLOCK_SECONDS + BLOCK_GRACE):
            result = await cast(Awaitable[Any], client.blpop([key], BLOCK_SECONDS))
    except ResponseError as exc:
        if str(exc).startswith("UNBLOCKED"):
            # A primary demoted to replica (cluster or Sentinel failover) ends blocked
            # commands with -UNBLOCKED; nothing was popped: retry like a lost connection.
            raise RedisConnectionError(f"BLPOP interrupted by a role change: {exc}") from exc
        raise
    task = asyncio.current_task()
    if task is not None and task.cancelling() and result is None:
        raise asyncio.CancelledError
    return result


class LoopState:
    """One event loop's connections (per shard: one pool for commands, one for BLPOPs), its
    registered scripts and its process-local reader task."""

    def __init__(self, hosts: list[HostSpec], cluster: ClusterSpec | None = None) -> None:
        self.clients: list[Any] = [make_client(h) for h in hosts]
        self.blocking_clients: list[Any] = [make_client(h, blocking=True) for h in hosts]
        if cluster is not None:  # one "shard": the cluster client routes by slot itself
            self.clients = [cluster.client()]
            self.blocking_clients = [cluster.client(blocking=True)]
        self.scripts: list[Any] = [c.register_script(SEND_SCRIPT) for c in self.clients]
        self.member_scripts: list[Any] = [
            c.register_script(GROUP_MEMBERS_SCRIPT) for c in self.clients
        ]
        self.reader: asyncio.Task[None] | None = None
        self.pending: set[asyncio.Future[Any]] = set()
        self.stopping = False
