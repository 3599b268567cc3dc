"""Frame bytes without wsproto (server/sansio/ws_wire.py): outgoing data frames and the
fan-out cache, and the declared length of incoming frames."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.events import BytesMessage

from server.sansio.ws_frames import (
    encode_data_frame,
)
from server.sansio.ws_wire import JOIN_LIMIT, FrameLengths
from tests.support.ws_sansio import (
    client,
    frame_bytes,
    masked_frame,
)


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 70000])
def test_encode_lengths(n: int) -> None:
    payload = os.urandom(n)
    frame = frame_bytes(encode_data_frame(payload))
    c = client()
    c.receive_data(frame)
    (event,) = list(c.events())
    assert isinstance(event, BytesMessage)
    assert event.data == payload and event.message_finished
    # Large payloads are not copied into the frame: (header, payload) for writelines.
    assert isinstance(encode_data_frame(payload), tuple) == (n > JOIN_LIMIT)


def test_fanout_cache_identity_and_type() -> None:
    text = "broadcast " * 10
    first = encode_data_frame(text)
    assert encode_data_frame(text) is first  # same object: encoded once
    assert encode_data_frame("".join(["broadcast "] * 10)) is first  # equal value
    as_bytes = frame_bytes(encode_data_frame(text.encode()))
    assert as_bytes[0] == 0x82  # bytes with the same content are a binary frame, not the cache
    mutable = bytearray(b"abc")
    f1 = frame_bytes(encode_data_frame(mutable))
    mutable[0] = ord("x")
    assert frame_bytes(encode_data_frame(mutable)) == b"\x82\x03xbc" != f1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 70_000), min_size=1, max_size=6), st.integers(1, 40_000))
def test_frame_lengths_follow_any_split(sizes: list[int], step: int) -> None:
    """The first frame over the limit is found at its header, wherever the reads split."""
    limit = 50_000
    data = b"".join(masked_frame(0x82, b"a" * n) for n in sizes)
    starts = []
    pos = 0
    for n in sizes:
        starts.append(pos)
        pos += len(masked_frame(0x82, b"a" * n))
    expected = next((s for s, n in zip(starts, sizes, strict=True) if n > limit), -1)
    lengths = FrameLengths()
    found = -1
    for i in range(0, len(data), step):
        cut = lengths.first_too_long(data[i : i + step], limit)
        if cut >= 0:
            # Reported where its header starts in this read, or at 0 if the header began in
            # an earlier read and was completed by this one.
            assert expected >= 0, (i, cut)
            assert i + cut == expected or (cut == 0 and i - 14 < expected < i), (i, cut)
            found = expected
            break
    assert found == expected
