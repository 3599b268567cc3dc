"""What a room name may be.

Room names end up in a channel-layer group name (``chat_<room>``), and group names may only hold
ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100 characters.  One pattern is shared
by the HTTP URL, the WebSocket route and the index page's form, so a name accepted by one is
accepted by all.
"""

ROOM_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"

# Longest chat message accepted from a client; longer ones close the socket with 1009.
MAX_MESSAGE_LENGTH = 2000


def group_name(room_name: str) -> str:
    return f"chat_{room_name}"
