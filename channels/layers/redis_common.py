"""What both Redis layers share: hosts, shards, clients, bounded commands, the codec.

* **Hosts** (:func:`parse_hosts`): URLs, ``(host, port)`` pairs, dicts of client options, or
  Sentinel-monitored services, each a :class:`HostSpec` (one shard).
* **Clients** are built in one place, :func:`make_client` (retries with backoff, Sentinel
  masters, the no-socket-timeout variant for blocking reads), and closed by
  :func:`close_client`.  Redis Cluster clients are built by ``ClusterSpec.client`` in
  :mod:`channels.layers.redis_cluster`.
* **Keys to connections**: :class:`HashRing` maps a channel or group name to a shard index
  (consistent hashing with virtual nodes); each layer asks it in exactly one method
  (``_shard``).  On a Redis Cluster the ring has one entry (the cluster client routes each
  key to its slot's node itself).
* **Bounded commands** (:func:`bounded`): every non-blocking operation fails with a clear
  ``redis.exceptions.TimeoutError`` after ``command_timeout`` instead of hanging on a Redis
  that accepts connections but never answers.
* **Codec**: ``serializer_format`` ``"msgpack"`` (default) or ``"json"``, optionally
  Fernet-encrypted with ``symmetric_encryption_keys``; both layers route every payload through
  their ``serialize()``/``deserialize()`` methods, so a subclass can change the wire format.
* **Per-loop pools closed with their loop** (:func:`close_pools_with_loop`): ``async_to_sync``
  runs each call on a fresh loop; a loop's connections are closed just before it closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.layers.redis_cluster import CLUSTER_ERRORS

__all__ = [
    "COMMAND_TIMEOUT",
    "DEADLINE_DIGITS",
    "RECONNECT_BACKOFF_MAX",
    "RECONNECT_ERRORS",
    "SERIALIZER_FORMATS",
    "Codec",
    "HashRing",
    "HostSpec",
    "SerializerDoesNotExist",
    "bounded",
    "close_client",
    "close_pools_with_loop",
    "make_client",
    "parse_hosts",
]

Message = dict[str, Any]
# Cluster errors (a failover in progress, slots not yet covered) are transient like a lost
# connection (see channels.layers.redis_cluster).
RECONNECT_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    *CLUSTER_ERRORS,
)
# Bound on one non-blocking operation (connect + command + redis-py's own retries): a Redis
# that accepts connections but never answers (stopped, overloaded, half-open network) must
# give the caller a clear error instead of hanging it forever.
COMMAND_TIMEOUT = 10.0
# Longest pause between two attempts to reach a Redis that is down (redis-py's own retries and
# the layers' receive loops alike): it bounds how late delivery resumes once Redis is back,
# which must stay well within a second (tests/channels/layers/test_redis_faults.py).
RECONNECT_BACKOFF_MAX = 0.5
# Every stored or published payload starts with its deadline: milliseconds since the epoch,
# zero-padded to 13 digits (enough until the year 2286), so Lua can compare its first bytes.
DEADLINE_DIGITS = 13


class HashRing:
    """Consistent hashing: adding a shard moves only about 1/n of the names."""

    VNODES = 160

    def __init__(self, shard_ids: list[str]) -> None:
        self.size = len(shard_ids)
        points: list[tuple[int, int]] = []
        for index, shard_id in enumerate(shard_ids):
            for vnode in range(self.VNODES):
                points.append((binascii.crc32(f"{shard_id}#{vnode}".encode()), index))
        points.sort()
        self._hashes = [p[0] for p in points]
        self._shards = [p[1] for p in points]

    def shard(self, name: str) -> int:
        if self.size == 1:
            return 0
        position = bisect.bisect(self._hashes, binascii.crc32(name.encode()))
        return self._shards[position % len(self._shards)]


@dataclass
class HostSpec:
    """How to connect to one shard."""

    url: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    sentinels: list[tuple[str, int]] | None = None
    master_name: str | None = None
    sentinel_kwargs: dict[str, Any] | None = None

    @property
    def ident(self) -> str:
        if self.sentinels is not None:
            return f"sentinel:{self.master_name}"
        if self.url is not None:
            return self.url
        return f"{self.kwargs.get('host', 'localhost')}:{self.kwargs.get('port', 6379)}"


def parse_hosts(
    hosts: Iterable[Any] | None,
    sentinels: list[tuple[str, int]] | None = None,
    services: list[str] | None = None,
    sentinel_kwargs: dict[str, Any] | None = None,
) -> list[HostSpec]:
    """``hosts`` entries are URLs, ``(host, port)`` pairs or dicts (``address`` plus client
    keyword arguments, or ``sentinels`` + ``master_name``).  ``sentinels`` + ``services`` at
    the top level add one shard per Sentinel-monitored service."""
    if isinstance(hosts, (str, bytes)) or (
        isinstance(hosts, tuple) and len(hosts) == 2 and isinstance(hosts[1], int)
    ):
        # Iterating a bare URL would make one "shard" per character.
        raise ValueError(
            f"hosts must be a list of Redis hosts, even for one: use [{hosts!r}], not {hosts!r}"
        )
    specs: list[HostSpec] = []
    if sentinels and services:
        for service in services:
            specs.append(
                HostSpec(
                    sentinels=[tuple(s) for s in sentinels],  # type: ignore[misc]
                    master_name=service,
                    sentinel_kwargs=sentinel_kwargs,
                )
            )
    for entry in hosts or ():
        if isinstance(entry, str):
            specs.append(HostSpec(url=entry))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            specs.append(HostSpec(kwargs={"host": str(entry[0]), "port": int(entry[1])}))
        elif isinstance(entry, Mapping):
            entry = dict(entry)
            if "sentinels" in entry:
                master = entry.pop("master_name", None) or entry.pop("service_name", None)
                if not master:
                    raise ValueError("a Sentinel host needs 'master_name'")
                specs.append(
                    HostSpec(
                        sentinels=[tuple(s) for s in entry.pop("sentinels")],
                        master_name=master,
                        sentinel_kwargs=entry.pop("sentinel_kwargs", None),
                        kwargs=entry,
                    )
                )
            elif "address" in entry:
                address = entry.pop("address")
                if isinstance(address, str):
                    specs.append(HostSpec(url=address, kwargs=entry))
                else:
                    host, port = address
                    specs.append(HostSpec(kwargs={"host": host, "port": int(port), **entry}))
            else:
                specs.append(HostSpec(kwargs=entry))
        else:
            raise ValueError(f"cannot understand Redis host {entry!r}")
    if not specs:
        specs.append(HostSpec(kwargs={"host": "localhost", "port": 6379}))
    return specs


def make_client(spec: HostSpec, blocking: bool = False) -> Redis:
    """A client (with its own pool) for one shard.

    ``blocking`` clients serve BLPOP and have no socket timeout: with one, redis-py wraps
    each write in ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation
    (the task then keeps running).  Their reads are bounded by the caller
    (``channels.layers.redis_storage.blpop``) instead.
    """
    retry = Retry(ExponentialBackoff(cap=RECONNECT_BACKOFF_MAX, base=0.02), 5)
    options: dict[str, Any] = {
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        **spec.kwargs,
    }
    if blocking:
        options["socket_timeout"] = None
    if spec.sentinels is not None:
        assert spec.master_name is not None
        sentinel = Sentinel(
            spec.sentinels, sentinel_kwargs=spec.sentinel_kwargs, **options
        )
        client = cast(Redis, sentinel.master_for(spec.master_name))
        # Remember the Sentinel: its own connections to the sentinels need closing too.
        client._channels_sentinel = sentinel  # type: ignore[attr-defined]
        return client
    if spec.url is not None:
        return Redis.from_url(spec.url, **options)
    return Redis(**options)


@contextlib.asynccontextmanager
async def bounded(what: str, seconds: float) -> AsyncIterator[None]:
    """Fail with a Redis ``TimeoutError`` naming ``what`` if the block takes longer."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise RedisTimeoutError(
            f"Redis did not answer {what} within {seconds:g} s (is the server reachable?)"
        ) from exc


async def close_client(client: Redis) -> None:
    """Close a client's pool (and its Sentinel's connections, if any); errors are moot."""
    with contextlib.suppress(*RECONNECT_ERRORS):
        await client.aclose()
    sentinel = getattr(client, "_channels_sentinel", None)
    for sentinel_client in getattr(sentinel, "sentinels", ()):
        with contextlib.suppress(*RECONNECT_ERRORS):
            await sentinel_client.aclose()


def close_pools_with_loop(
    loop: asyncio.AbstractEventLoop,
    open_loops: Container[asyncio.AbstractEventLoop],
    close_pools: Callable[[], Awaitable[None]],
) -> None:
    """Run ``close_pools()`` on ``loop`` just before the loop itself closes, while the layer
    still has connections there (``loop in open_loops``): no socket outlives its loop."""
    original = loop.close

    def close() -> None:
        if loop in open_loops and not loop.is_running() and not loop.is_closed():
            loop.run_until_complete(close_pools())
        original()

    with contextlib.suppress(AttributeError):  # e.g. uvloop loops reject new attributes
        loop.close = close  # type: ignore[method-assign]


SERIALIZER_FORMATS = ("msgpack", "json")


class SerializerDoesNotExist(KeyError, ValueError):
    """``serializer_format`` names no known format (a ``KeyError`` like channels_redis's, and a
    ``ValueError`` so a bad setting is reported as bad CONFIG)."""


class Codec:
    """msgpack or JSON, optionally Fernet-encrypted (``symmetric_encryption_keys``).

    Each key string is stretched to a Fernet key as base64(SHA-256(key)); the first key
    encrypts, all of them are tried to decrypt (so keys can be rotated).
    """

    def __init__(
        self,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        serializer_format: str = "msgpack",
    ) -> None:
        if serializer_format not in SERIALIZER_FORMATS:
            raise SerializerDoesNotExist(
                f"serializer_format must be one of {', '.join(map(repr, SERIALIZER_FORMATS))}, "
                f"not {serializer_format!r}"
            )
        self.format = serializer_format
        self.crypter: Any = None
        if symmetric_encryption_keys:
            if isinstance(symmetric_encryption_keys, (str, bytes)):
                raise ValueError("symmetric_encryption_keys must be a list of keys, not one key")
            from cryptography.fernet import Fernet, MultiFernet

            fernets = []
            for key in symmetric_encryption_keys:
                raw = key.encode("utf8") if isinstance(key, str) else key
                fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest())))
            self.crypter = MultiFernet(fernets)

    def encode(self, message: Message) -> bytes:
        try:
            if self.format == "json":
                data = json.dumps(message, separators=(",", ":")).encode("utf-8")
            else:
                data = cast(bytes, msgpack.packb(message, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            # Fail at send time, in the sender, with a message saying what is allowed.
            allowed = (
                "dict, list, str, int, float, bool, None; no bytes"
                if self.format == "json"
                else "dict, list, tuple, str, bytes, int, float, bool, None"
            )
            raise TypeError(
                f"channel layer messages must be {self.format}-serialisable ({allowed}); {exc}"
            ) from None
        if self.crypter is not None:
            data = cast(bytes, self.crypter.encrypt(data))
        return data

    def decode(self, data: bytes) -> Message:
        if self.crypter is not None:
            data = cast(bytes, self.crypter.decrypt(data))
        if self.format == "json":
            message: Any = json.loads(data)
        else:
            message = msgpack.unpackb(data, raw=False)
        if not isinstance(message, dict):
            raise ValueError("payload is not a dict")
        return message
