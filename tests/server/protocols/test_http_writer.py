"""server.writer (serialization, coalesced writes) and server.datecache."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from server.datecache import date_line
from server.writer import JOIN_LIMIT, simple_response, status_line, write_parts
from tests.support.fakes import FakeTransport


class CountingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append("write")
        super().write(data)

    def writelines(self, list_of_data: object) -> None:
        self.calls.append("writelines")
        super().writelines(list_of_data)  # type: ignore[arg-type]


def test_date_line_cached_per_second() -> None:
    first = date_line(1_700_000_000.1)
    assert first == b"date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
    assert date_line(1_700_000_000.9) is first  # same second: not formatted again
    later = date_line(1_700_000_001.0)
    assert later != first
    assert parsedate_to_datetime(later[6:-2].decode()).timestamp() == 1_700_000_001
    assert date_line().startswith(b"date: ") and date_line().endswith(b" GMT\r\n")


def test_status_lines() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(299) == b"HTTP/1.1 299 \r\n"  # unknown: empty reason (RFC 9112 4)


def test_write_parts_one_call_each() -> None:
    t = CountingTransport()
    write_parts(t, [])
    write_parts(t, [b"one"])
    write_parts(t, [b"a", b"b", b"c"])
    write_parts(t, [b"head", b"x" * (JOIN_LIMIT + 1)])
    assert t.calls == ["write", "write", "writelines"]
    assert t.writes == [b"one", b"abc", b"head" + b"x" * (JOIN_LIMIT + 1)]


def test_simple_response() -> None:
    assert simple_response(400, b"bad\n", extra=b"server: s\r\n") == (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 4\r\nserver: s\r\nconnection: close\r\n\r\nbad\n"
    )
