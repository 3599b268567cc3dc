"""Django Channels-compatible framework bundled with channels-server.

The public module layout matches upstream Channels 4.x so existing projects import the same
names (``channels.consumer``, ``channels.routing``, ``channels.layers`` ...).
"""

__version__ = "4.2.0"

# Alias of the channel layer used when none is named (``CHANNEL_LAYERS["default"]``).
DEFAULT_CHANNEL_LAYER = "default"
