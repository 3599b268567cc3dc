"""``channels_redis`` import paths, served by channels-server's own Redis layers.

Settings written for upstream Channels keep working unchanged::

    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", ...}}

``channels_redis.core.RedisChannelLayer`` is :class:`channels.layers.redis.RedisChannelLayer`
and ``channels_redis.pubsub.RedisPubSubChannelLayer`` is
:class:`channels.layers.redis_pubsub.RedisPubSubChannelLayer`: the very same classes, so
``isinstance`` checks and subclasses work either way.  Do not install the upstream
``channels_redis`` distribution next to this one (it would replace this package and pull the
upstream ``channels`` in); see the README's "Moving from Daphne" section.
"""

from __future__ import annotations

# The channels_redis release whose settings and import paths this package answers to.
__version__ = "4.3.0+channels-server"
