"""AsyncHttpConsumer through HttpCommunicator and raw ApplicationCommunicator."""

from __future__ import annotations

from typing import Any

import pytest

from channels.generic.http import AsyncHttpConsumer
from channels.testing import ApplicationCommunicator, HttpCommunicator

disconnects: list[str] = []


class Upper(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_response(
            201, body.upper(), headers={"Content-Type": "text/plain", b"X-Len": str(len(body))}
        )

    async def disconnect(self) -> None:
        disconnects.append("upper")


class Streamer(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=[(b"content-type", b"text/event-stream")])
        for n in range(3):
            await self.send_body(f"data: {n}\n\n".encode(), more_body=True)
        await self.send_body(b"")


class BadBody(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_headers()
        await self.send_body("text")  # type: ignore[arg-type]


async def test_response_status_headers_body() -> None:
    disconnects.clear()
    comm = HttpCommunicator(Upper.as_asgi(), "POST", "/x?y=1", body=b"hello")
    response = await comm.get_response()
    assert response["status"] == 201
    assert response["body"] == b"HELLO"
    assert (b"Content-Type", b"text/plain") in response["headers"]
    assert (b"X-Len", b"5") in response["headers"]
    assert comm.scope["query_string"] == b"y=1"
    assert disconnects == ["upper"]


async def test_body_collected_over_several_messages() -> None:
    comm = ApplicationCommunicator(Upper.as_asgi(), {"type": "http", "method": "PUT"})
    await comm.send_input({"type": "http.request", "body": b"ab", "more_body": True})
    await comm.send_input({"type": "http.request", "body": b"", "more_body": True})
    await comm.send_input({"type": "http.request", "body": b"cd"})
    start = await comm.receive_output()
    assert start["status"] == 201
    body = await comm.receive_output()
    assert body == {"type": "http.response.body", "body": b"ABCD", "more_body": False}
    await comm.wait()


async def test_streaming_body() -> None:
    response = await HttpCommunicator(Streamer.as_asgi(), "GET", "/").get_response()
    assert response["status"] == 200
    assert response["body"] == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_disconnect_before_body_complete_calls_disconnect() -> None:
    disconnects.clear()
    comm = ApplicationCommunicator(Upper.as_asgi(), {"type": "http", "method": "POST"})
    await comm.send_input({"type": "http.request", "body": b"ab", "more_body": True})
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait()
    assert disconnects == ["upper"]
    assert await comm.receive_nothing()


async def test_non_bytes_body_rejected() -> None:
    comm = HttpCommunicator(BadBody.as_asgi(), "GET", "/")
    with pytest.raises(TypeError, match="must be bytes"):
        await comm.get_response()


async def test_handle_must_be_implemented() -> None:
    comm = HttpCommunicator(AsyncHttpConsumer.as_asgi(), "GET", "/")
    with pytest.raises(NotImplementedError):
        await comm.get_response()


def test_communicator_rejects_str_body() -> None:
    body: Any = "text"
    with pytest.raises(TypeError, match="body must be bytes"):
        HttpCommunicator(Upper.as_asgi(), "GET", "/", body=body)
