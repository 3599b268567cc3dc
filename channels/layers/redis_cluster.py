"""Redis Cluster support shared by both Redis layers: settings, clients, key layout, fan-out.

Settings
--------
A layer runs on a Redis Cluster when its ``hosts`` are ``redis+cluster://`` (or
``rediss+cluster://`` for TLS) URLs; every entry is a *startup node* of one cluster, the client
discovers the other nodes itself (``CLUSTER SLOTS``), follows ``MOVED``/``ASK`` redirections and
refreshes its view of the topology after a redirection or a lost node.  Commands go to primaries
only (the layers read what they just wrote; a replica may lag behind).  Hash-ring sharding over
several ``hosts`` does not apply: the cluster shards by itself.

Key layout
----------
Redis Cluster runs a script or a multi-key command only when all its keys hash to one slot
(16384 slots, CRC16 of the key, or of the part between the first ``{`` and ``}``: the *hash
tag*).  So in cluster mode:

* a channel's list is ``{prefix}:{<name>}`` (its expiry is the TTL of that one key);
* a group's sorted set is ``{prefix}:group:{<group>}``;
* ``group_send`` groups the member lists by slot and runs the send script once per slot; all
  the calls for one node go out in one pipeline (one round trip per node, nodes in parallel).
  Process-local members share their process's list, so a group spread over N processes costs
  at most N script calls, whatever the number of members.

Channel and group names never contain braces, so the tag is always the whole name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import ClusterError, NoScriptError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "CLUSTER_ERRORS",
    "ClusterSpec",
    "TopologyLog",
    "cluster_spec",
    "push_per_slot",
    "slot_of",
]

logger = logging.getLogger("channels.layers")

SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
# Errors a cluster raises while it reshapes itself (a failover in progress, slots not yet
# covered, a redirection loop): transient like a lost connection, so handled like one.
CLUSTER_ERRORS: tuple[type[Exception], ...] = (ClusterError, RedisClusterException)
# Socket timeout of ordinary cluster commands: a killed node's sockets usually fail at once,
# but a node that vanished without a FIN/RST (a partition) must still be given up on soon
# enough for the client to refresh the topology within the layer's command timeout.
SOCKET_TIMEOUT = 5.0


def slot_of(key: str) -> int:
    """The cluster slot of ``key`` (hash tags honoured)."""
    return int(key_slot(key.encode()))


@dataclass
class ClusterSpec:
    """How to reach one Redis Cluster: startup nodes plus client options from the URLs."""

    nodes: list[tuple[str, int]]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return "cluster:" + ",".join(f"{h}:{p}" for h, p in self.nodes)

    def client(self, blocking: bool = False) -> RedisCluster:
        """A cluster client (with one connection pool per node).

        ``blocking`` clients serve BLPOP and have no socket timeout (see ``make_client`` in
        the Redis layer: a socket timeout makes redis-py wrap writes in ``wait_for``, which
        can swallow a cancellation on Python 3.11); their reads are bounded client-side.
        """
        # Imported here: redis_common imports this module (for CLUSTER_ERRORS).
        from channels.layers.redis_common import RECONNECT_BACKOFF_MAX

        options: dict[str, Any] = {
            "retry": Retry(ExponentialBackoff(cap=RECONNECT_BACKOFF_MAX, base=0.02), 5),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
            "socket_timeout": None if blocking else SOCKET_TIMEOUT,
            **self.kwargs,
        }
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.nodes], **options)


def cluster_spec(hosts: Iterable[Any] | None) -> ClusterSpec | None:
    """A :class:`ClusterSpec` when ``hosts`` name a cluster (``redis+cluster://`` URLs, or
    dicts whose ``address`` is one), else ``None``.  Mixing cluster and plain hosts is an
    error: the hash ring cannot shard across a cluster."""
    if hosts is None or isinstance(hosts, (str, bytes)):
        return None
    entries = list(hosts)
    urls: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        if isinstance(entry, str):
            url, extra = entry, {}
        elif isinstance(entry, Mapping) and isinstance(entry.get("address"), str):
            extra = dict(entry)
            url = extra.pop("address")
        else:
            continue
        if urlsplit(url).scheme in SCHEMES:
            urls.append((url, extra))
    if not urls:
        return None
    if len(urls) != len(entries):
        raise ValueError(
            "hosts mixes redis+cluster:// URLs with other Redis hosts; a cluster shards by "
            "itself, so list only its startup nodes"
        )
    nodes: list[tuple[str, int]] = []
    kwargs: dict[str, Any] = {}
    for url, extra in urls:
        parts = urlsplit(url)
        if parts.path not in ("", "/", "/0"):
            raise ValueError(f"a Redis Cluster has only database 0: {url!r}")
        nodes.append((parts.hostname or "localhost", parts.port or 6379))
        if SCHEMES[parts.scheme]:
            kwargs["ssl"] = True
        if parts.username:
            kwargs["username"] = unquote(parts.username)
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        kwargs.update(extra)
    return ClusterSpec(nodes=nodes, kwargs=kwargs)


async def push_per_slot(
    client: RedisCluster,
    script: Any,
    items: list[tuple[str, int, bytes]],
    head: list[Any],
) -> list[int]:
    """Run the send script over ``(key, capacity, header)`` items, once per slot.

    ``head`` are the script's first arguments (payload, TTL, now).  Every slot's call is
    queued in one cluster pipeline: redis-py sends each node its share in one round trip and
    follows redirections.  A node that lost its script cache (a promoted replica, a restart)
    answers NOSCRIPT; those calls are repeated with the script's text, which caches it there.
    Returns the indexes (into ``items``) of full lists.
    """
    by_slot: dict[int, list[int]] = {}
    for index, (key, _capacity, _header) in enumerate(items):
        by_slot.setdefault(slot_of(key), []).append(index)
    groups = list(by_slot.values())

    def arguments(indexes: list[int]) -> tuple[list[str], list[Any]]:
        args = list(head)
        for i in indexes:
            args += [items[i][1], items[i][2]]
        return [items[i][0] for i in indexes], args

    if len(groups) == 1:
        keys, args = arguments(groups[0])
        replies: list[Any] = [await script(keys=keys, args=args, client=client)]
    else:
        async with client.pipeline(transaction=False) as pipe:
            for indexes in groups:
                keys, args = arguments(indexes)
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
        retry = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if retry:
            async with client.pipeline(transaction=False) as pipe:
                for n in retry:
                    keys, args = arguments(groups[n])
                    pipe.eval(script.script, len(keys), *keys, *args)
                for n, reply in zip(retry, await pipe.execute(raise_on_error=False), strict=True):
                    replies[n] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    full: list[int] = []
    for indexes, reply in zip(groups, replies, strict=True):
        full += [indexes[int(i) - 1] for i in reply]
    return full


class TopologyLog:
    """Log a cluster event once, not once per retry: the first failure of an outage is a
    warning, later ones are silent until an operation succeeds again (logged once as
    recovered).  Shared by all connections of a layer."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False
        self.events = 0

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            self.failing = True
            self.events += 1
            logger.warning(
                "%s: Redis Cluster node lost or topology changing (%s: %s); retrying until "
                "the cluster settles",
                self.what,
                type(exc).__name__,
                exc,
            )

    def recovered(self) -> None:
        if self.failing:
            self.failing = False
            logger.warning("%s: Redis Cluster reachable again", self.what)
