"""``channels_redis.pubsub``: the Redis Pub/Sub channel layer."""

from __future__ import annotations

from channels.layers.redis_pubsub import RedisPubSubChannelLayer

__all__ = ["RedisPubSubChannelLayer"]
