"""``WebsocketCommunicator`` failures read as upstream's (Channels 4.2+): tests match them."""

from __future__ import annotations

from typing import Any

import pytest

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator


class Replies(AsyncWebsocketConsumer):
    """Answers "bin" with a binary frame, "close" by closing, anything else with its text."""

    channel_layer_alias = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "bin":
            await self.send(bytes_data=b"\x00\x01")
        elif text_data == "close":
            await self.close(code=4000)
        else:
            await self.send(text_data=text_data)


async def connected() -> WebsocketCommunicator:
    comm = WebsocketCommunicator(Replies.as_asgi(), "/")
    assert (await comm.connect())[0]
    return comm


async def test_receive_json_from_a_binary_frame() -> None:
    comm = await connected()
    await comm.send_to(text_data="bin")
    with pytest.raises(AssertionError) as failure:
        await comm.receive_json_from()
    assert str(failure.value) == "JSON data is not a text frame, it is <class 'bytes'>"
    await comm.disconnect()


async def test_receive_from_when_the_app_closed() -> None:
    comm = await connected()
    await comm.send_to(text_data="close")
    with pytest.raises(AssertionError) as failure:
        await comm.receive_from()
    assert str(failure.value) == "Expected type 'websocket.send', but was 'websocket.close'"
    await comm.disconnect(code=4000)  # what a server sends once the close handshake is done


async def test_receive_from_a_malformed_send() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        await send({"type": "websocket.send", "text": b"not str"})

    comm = WebsocketCommunicator(app, "/")
    await comm.connect()
    with pytest.raises(AssertionError) as failure:
        await comm.receive_from()
    assert str(failure.value) == "The response needs exactly one of 'text' or 'bytes'"
    with pytest.raises(AssertionError) as failure:
        await comm.receive_from()
    assert str(failure.value) == "Text frame payload is not str, it is <class 'bytes'>"
    await comm.wait()


async def test_send_to_argument_errors() -> None:
    comm = await connected()
    one_of = "You must supply exactly one of text_data or bytes_data"
    for kwargs, message in [
        ({}, one_of),
        ({"text_data": "a", "bytes_data": b"b"}, one_of),
        ({"text_data": b"a"}, "The text_data argument must be a str"),
        ({"bytes_data": "a"}, "The bytes_data argument must be bytes"),
    ]:
        with pytest.raises(AssertionError) as failure:
            await comm.send_to(**kwargs)
        assert str(failure.value) == message
    # Fixed relative to upstream (which tests truthiness): an empty text frame can be sent.
    await comm.send_to(text_data="")
    assert await comm.receive_from() == ""
    await comm.disconnect()
