"""The phases of an HTTP/1.1 connection (``HttpProtocol.phase``) and the moves between them.

``HttpProtocol._to`` is the only place a connection changes phase; it checks every move against
``TRANSITIONS`` and raises on any other (a bug, never the client's doing).  What is not a phase
stays a flag on the protocol: reading paused because the app is behind on the body, a parsing
loop already running further up the stack, the server stopping, the first read possibly being
an HTTP/2 preface.
"""

from __future__ import annotations

import enum
from typing import Final


class Phase(enum.IntEnum):
    """Where an HTTP/1.1 connection is; it moves only through ``HttpProtocol._to``.

    An IntEnum because the members are hashed on every move (the table below): a plain Enum
    hashes in Python, several hundred instructions each time, an IntEnum as an int.
    """

    IDLE = 1  # before a request: nothing of its head has arrived
    HEAD = 2  # part of a request head has arrived (the head deadline runs)
    REQUEST = 3  # a request cycle runs (``HttpProtocol.cycle``)
    BLOCKED = 4  # a response is complete, the next request waits for the client to read
    LINGERING = 5  # our side is done and half-closed; input is discarded until EOF
    HANDED_OFF = 6  # the transport belongs to another protocol (WebSocket, HTTP/2)
    CLOSED = 7


IDLE, HEAD, REQUEST, BLOCKED = Phase.IDLE, Phase.HEAD, Phase.REQUEST, Phase.BLOCKED
LINGERING, HANDED_OFF, CLOSED = Phase.LINGERING, Phase.HANDED_OFF, Phase.CLOSED

# Every move a connection may make (anything else is a bug and raises).  From IDLE or HEAD a
# head that is answered by the server itself (health check) goes back to IDLE or HEAD.
TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    IDLE: frozenset((IDLE, HEAD, REQUEST, BLOCKED, HANDED_OFF, LINGERING, CLOSED)),
    HEAD: frozenset((IDLE, HEAD, REQUEST, BLOCKED, HANDED_OFF, LINGERING, CLOSED)),
    REQUEST: frozenset((IDLE, HEAD, BLOCKED, LINGERING, CLOSED)),
    BLOCKED: frozenset((IDLE, HEAD, LINGERING, CLOSED)),
    LINGERING: frozenset((CLOSED,)),
    HANDED_OFF: frozenset(),
    CLOSED: frozenset(),
}
# The phases in which this protocol no longer reads or writes (``HttpProtocol.closed``).
ENDED: Final = frozenset((LINGERING, HANDED_OFF, CLOSED))
