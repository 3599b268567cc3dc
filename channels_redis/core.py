"""``channels_redis.core``: the Redis channel layer (one Redis server or a shard of them)."""

from __future__ import annotations

from channels.layers.redis import RedisChannelLayer

__all__ = ["RedisChannelLayer"]
