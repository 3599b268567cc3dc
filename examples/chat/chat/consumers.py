"""The chat consumer: one instance per WebSocket connection.

Wire format (JSON text frames):

- client to server: ``{"message": "<text>"}``
- server to client: ``{"type": "welcome", "room": "<room>", "worker": <pid>}`` once after the
  handshake (the pid shows which worker process holds the socket when running ``--workers N``),
  then ``{"type": "message", "message": "<text>"}`` for every message posted in the room,
  including the sender's own (it comes back through the group, which is how the sender knows
  the others received it too).

Bad input closes the socket with the RFC 6455 §7.4.1 code that says why: 1003 for binary
frames, 1007 for text that is not ``{"message": <string>}``, 1009 for an over-long message.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from .rooms import MAX_MESSAGE_LENGTH, group_name

logger = logging.getLogger(__name__)

CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_MESSAGE_TOO_BIG = 1009


class ChatConsumer(AsyncWebsocketConsumer):
    room_name: str = ""
    room_group_name: str = ""

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = group_name(self.room_name)
        # Join the group before accepting, so no message posted right after the handshake can
        # miss this socket.
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()
        await self.send(
            text_data=json.dumps({"type": "welcome", "room": self.room_name, "worker": os.getpid()})
        )
        logger.debug("joined %s as %s", self.room_group_name, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.room_group_name:
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.close(code=CLOSE_UNSUPPORTED_DATA)
            return
        message = _parse_message(text_data)
        if message is None:
            await self.close(code=CLOSE_INVALID_PAYLOAD)
            return
        if len(message) > MAX_MESSAGE_LENGTH:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        if not message.strip():
            return  # nothing to say; not worth an error
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        """Handler for ``chat.message`` events sent to the room's group."""
        await self.send(text_data=json.dumps({"type": "message", "message": event["message"]}))


def _parse_message(text: str) -> str | None:
    """The ``message`` string of a client frame, or None if the frame is malformed."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    message = payload.get("message")
    return message if isinstance(message, str) else None
