"""HPACK encoder and decoder that reuse their previous result when the same header list (or
block) meets the same dynamic table: responses repeat their head and clients resend the same
indexed request block, so most blocks skip the HPACK work (RFC 7541)."""

from __future__ import annotations

from typing import Any

from hpack import Decoder, Encoder


def _table_mark(table: Any) -> tuple[object, int, int]:
    """What identifies an HPACK dynamic table's state: entries are only ever added at the
    front as new tuples, so the front entry's identity, the count and the size limit change
    whenever the table does."""
    entries = table.dynamic_entries
    return (entries[0] if entries else None, len(entries), table.maxsize)


class RepeatingEncoder(Encoder):
    """An HPACK encoder that reuses the block of a header list it just encoded.

    RFC 7541 encoding is a function of the header list and the dynamic table; when encoding a
    list left the table unchanged (every field was indexed), the same list against the same
    table gives the same bytes and changes nothing.  Responses repeat their head (status,
    content-type, the Date of this second, Server), so most skip the encoder.
    """

    def __init__(self) -> None:
        super().__init__()
        self._key: tuple[Any, ...] | None = None
        self._mark: tuple[object, int, int] | None = None
        self._block = b""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self.header_table
        if table.resized or not isinstance(headers, list):
            return super().encode(headers, huffman)
        key = tuple(headers)
        mark = _table_mark(table)
        if key == self._key and mark == self._mark and mark[0] is self._mark[0]:
            return self._block
        block = super().encode(headers, huffman)
        after = _table_mark(table)
        if after == mark and after[0] is mark[0]:
            self._key, self._mark, self._block = key, mark, block
        return block


class RepeatingDecoder(Decoder):
    """An HPACK decoder that reuses the field list of a block it just decoded, under the same
    rule as ``RepeatingEncoder``: same bytes, same table, and the table left unchanged (clients
    resend the same indexed block for every request of a page or a load test)."""

    def __init__(self) -> None:
        super().__init__()
        self._data = b""
        self._mark: tuple[object, int, int] | None = None
        self._fields: list[Any] = []

    def decode(self, data: bytes, raw: bool = False) -> Any:
        table = self.header_table
        mark = _table_mark(table)
        if raw and data == self._data and mark == self._mark and mark[0] is self._mark[0]:
            return list(self._fields)
        fields = super().decode(data, raw)
        after = _table_mark(table)
        if raw and after == mark and after[0] is mark[0]:
            self._data, self._mark, self._fields = bytes(data), mark, list(fields)
        return fields
