"""The channel layer contract shared by every backend.

A channel layer moves dict messages between named *channels* (point-to-point, one receiver
takes each message) and *groups* (a named set of channels that one ``group_send`` reaches).
This module holds what every backend agrees on: name rules, per-channel capacities and the
``extensions`` a backend advertises.

Name rules (Channels channel-layer specification): channel and group names are strings of
ASCII letters, digits, hyphens, underscores and periods, shorter than ``MAX_NAME_LENGTH``
characters.  A channel name may also contain one ``!``: everything up to and including it is
the *non-local* part naming the process that owns the channel (``specific.abc!def``).
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

__all__ = ["BaseChannelLayer", "InvalidChannelName"]


class InvalidChannelName(TypeError, ValueError):
    """A channel or group name breaks the naming rules.

    It is both a ``TypeError`` (what Channels has always raised, so ``except TypeError`` in
    existing projects keeps working) and a ``ValueError`` (what a bad *value* really is).
    """


CapacityPattern = str | re.Pattern[str]


class BaseChannelLayer:
    """Name validation, capacities and extension flags; backends add the messaging."""

    MAX_NAME_LENGTH: ClassVar[int] = 100
    extensions: ClassVar[list[str]] = ["groups", "flush"]

    channel_name_regex: ClassVar[re.Pattern[str]] = re.compile(
        r"^[a-zA-Z\d\-_.]+(![a-zA-Z\d\-_.]*)?$"
    )
    group_name_regex: ClassVar[re.Pattern[str]] = re.compile(r"^[a-zA-Z\d\-_.]+$")
    # Upstream's exact text (one ``{}`` for "Channel"/"Group"): projects' tests match on
    # ``layer.invalid_name_error.format("Channel")``.  The offending name is attached as an
    # exception note instead, so tracebacks show it while ``str(exc)`` stays upstream's.
    invalid_name_error: ClassVar[str] = (
        "{} name must be a valid unicode string with length < 100 containing only ASCII "
        "alphanumerics, hyphens, underscores, or periods."
    )
    receive_name_error: ClassVar[str] = "Specific channel names in receive() must end at the !"

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int] | None = None,
    ) -> None:
        if expiry <= 0:
            raise ValueError(f"expiry must be a positive number of seconds, not {expiry!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        self.expiry = expiry
        self.capacity = capacity
        self.channel_capacity = self.compile_capacities(channel_capacity or {})

    # ---------------------------------------------------------------- capacities
    @staticmethod
    def compile_capacities(
        channel_capacity: Mapping[CapacityPattern, int],
    ) -> list[tuple[re.Pattern[str], int]]:
        """Turn ``{pattern: capacity}`` into ``[(compiled regex, capacity)]``.

        Strings are shell-style globs (``"http.request*"``); already-compiled regexes are used
        as they are.  Order is kept: the first matching pattern wins.
        """
        result: list[tuple[re.Pattern[str], int]] = []
        for pattern, value in channel_capacity.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"channel_capacity[{pattern!r}] must be an int >= 1, not {value!r}"
                )
            if isinstance(pattern, re.Pattern):
                result.append((pattern, value))
            elif isinstance(pattern, str):
                result.append((re.compile(fnmatch.translate(pattern)), value))
            else:
                raise TypeError(
                    f"channel_capacity keys must be glob strings or compiled regexes, "
                    f"not {pattern!r}"
                )
        return result

    def get_capacity(self, channel: str) -> int:
        """The capacity of ``channel``: the first matching ``channel_capacity`` pattern, else
        the layer-wide ``capacity``."""
        for pattern, value in self.channel_capacity:
            if pattern.match(channel):
                return value
        return self.capacity

    # ---------------------------------------------------------------- names
    def match_type_and_length(self, name: object) -> bool:
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def _bad_name(self, kind: str, name: object) -> TypeError:
        """Upstream's exception for a bad name: ``TypeError`` for a non-string, else
        :class:`InvalidChannelName` (also a ``TypeError``); the name rides along as a note."""
        message = self.invalid_name_error.format(kind)
        exc: TypeError
        if isinstance(name, str):
            exc = InvalidChannelName(message)
            shown = name if len(name) <= 2 * self.MAX_NAME_LENGTH else name[:200] + "..."
            exc.add_note(f"{kind} name given: {shown!r} ({len(name)} characters)")
        else:
            exc = TypeError(message)
            exc.add_note(f"{kind} name given: a {type(name).__name__}, not a str")
        return exc

    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """Raise unless ``name`` is a valid channel name (upstream's types and messages).

        ``TypeError`` for a non-string, :class:`InvalidChannelName` (a ``TypeError`` and a
        ``ValueError``) for a bad string.  With ``receive=True`` a process-local name must end
        at the ``!`` (that is what a backend's receive loop listens on).
        """
        if not self.match_type_and_length(name):
            raise self._bad_name("Channel", name)
        assert isinstance(name, str)
        # fullmatch, not upstream's match(): "$" would also accept a trailing newline.
        if not self.channel_name_regex.fullmatch(name):
            raise self._bad_name("Channel", name)
        if receive and "!" in name and not name.endswith("!"):
            exc = InvalidChannelName(self.receive_name_error)
            exc.add_note(f"Channel name given: {name!r}")
            raise exc
        return True

    def require_valid_group_name(self, name: object) -> bool:
        if not self.match_type_and_length(name):
            raise self._bad_name("Group", name)
        assert isinstance(name, str)
        if not self.group_name_regex.fullmatch(name):
            raise self._bad_name("Group", name)
        return True

    def valid_channel_names(self, names: Iterable[object], receive: bool = False) -> bool:
        names = list(names)
        if not names:
            raise TypeError("At least one channel name is required")
        for name in names:
            self.require_valid_channel_name(name, receive=receive)
        return True

    # The spellings before Channels 4.2: they still work, with upstream's deprecation warning.
    def valid_channel_name(self, name: object, receive: bool = False) -> bool:
        warnings.warn(
            "valid_channel_name is deprecated, use require_valid_channel_name instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(name, receive=receive)

    def valid_group_name(self, name: object) -> bool:
        warnings.warn(
            "valid_group_name is deprecated, use require_valid_group_name instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(name)

    @staticmethod
    def non_local_name(name: str) -> str:
        """The part of a channel name before and including ``!`` (the whole name if none)."""
        bang = name.find("!")
        return name if bang == -1 else name[: bang + 1]

    @staticmethod
    def require_valid_message(message: object) -> None:
        if not isinstance(message, dict):
            raise TypeError(f"message must be a dict, not {type(message).__name__}")
        if "__asgi_channel__" in message:
            raise ValueError("message must not contain the reserved key '__asgi_channel__'")

    # ---------------------------------------------------------------- API backends implement
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise NotImplementedError("send() is not implemented by this layer")

    async def receive(self, channel: str) -> dict[str, Any]:
        raise NotImplementedError("receive() is not implemented by this layer")

    async def new_channel(self, prefix: str = "specific") -> str:
        raise NotImplementedError("new_channel() is not implemented by this layer")

    async def group_add(self, group: str, channel: str) -> None:
        raise NotImplementedError("group_add() is not implemented by this layer")

    async def group_discard(self, group: str, channel: str) -> None:
        raise NotImplementedError("group_discard() is not implemented by this layer")

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise NotImplementedError("group_send() is not implemented by this layer")

    async def flush(self) -> None:
        raise NotImplementedError("flush() is not implemented by this layer")

    async def release_channel(self, channel: str) -> None:
        """Forget what this process holds for ``channel``: its receiver is gone for good.

        Called once per consumer when it exits (``channels.utils.LayerSource.close``), so a
        server that has seen a million connections holds state for none of the closed ones.
        The default (a layer without per-channel state) does nothing.
        """

    async def close(self) -> None:
        """Release connections; the default layer holds none."""
