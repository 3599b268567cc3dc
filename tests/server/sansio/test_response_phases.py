"""``ResponseState``'s phase machine: the transition table, and every message in every phase.

The table is checked twice: directly (every (phase, event) pair through ``_next``) and through
the public methods the protocols call, so a method that forgot to consult the table, or that
changed something before refusing a message, fails here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from server.sansio.response import (
    TRANSITIONS,
    ASGIProtocolError,
    ResponseEvent,
    ResponsePhase,
    ResponseState,
)

P, E = ResponsePhase, ResponseEvent

# Written out again on purpose: a change to the table must be a change to this list too.
ALLOWED = {
    (P.NOT_STARTED, E.START): P.STARTED,
    (P.STARTED, E.BODY): P.STREAMING,
    (P.STARTED, E.LAST_BODY): P.COMPLETE,
    (P.STARTED, E.LAST_BODY_BEFORE_TRAILERS): P.TRAILERS_DUE,
    (P.STARTED, E.FILE): P.COMPLETE,
    (P.STARTED, E.WITHDRAW_HEAD): P.WITHDRAWN,
    (P.STREAMING, E.BODY): P.STREAMING,
    (P.STREAMING, E.LAST_BODY): P.COMPLETE,
    (P.STREAMING, E.LAST_BODY_BEFORE_TRAILERS): P.TRAILERS_DUE,
    (P.TRAILERS_DUE, E.TRAILER_FIELDS): P.TRAILERS,
    (P.TRAILERS_DUE, E.LAST_TRAILERS): P.COMPLETE,
    (P.TRAILERS, E.TRAILER_FIELDS): P.TRAILERS,
    (P.TRAILERS, E.LAST_TRAILERS): P.COMPLETE,
}
FORBIDDEN = [pair for pair in itertools.product(P, E) if pair not in ALLOWED]

# (started, head_sent, complete) in each phase: what the protocols read.
FLAGS = {
    P.NOT_STARTED: (False, False, False),
    P.STARTED: (True, False, False),
    P.STREAMING: (True, True, False),
    P.TRAILERS_DUE: (True, True, False),
    P.TRAILERS: (True, True, False),
    P.COMPLETE: (True, True, True),
    # Nothing was written: the protocol still answers 500.
    P.WITHDRAWN: (True, False, False),
}


def flags(r: ResponseState) -> tuple[bool, bool, bool]:
    return r.started, r.head_sent, r.complete


def snapshot(r: ResponseState) -> dict[str, Any]:
    return {name: getattr(r, name) for name in ResponseState.__slots__}


def test_table_is_exactly_the_allowed_transitions() -> None:
    assert dict(TRANSITIONS) == ALLOWED
    assert len(FORBIDDEN) == len(P) * len(E) - len(ALLOWED)


def test_every_phase_is_reachable_and_only_complete_and_withdrawn_are_final() -> None:
    reached = {P.NOT_STARTED}
    while True:
        more = {target for (phase, _), target in ALLOWED.items() if phase in reached}
        if more <= reached:
            break
        reached |= more
    assert reached == set(P)
    exits = {phase for phase, _ in ALLOWED}
    assert set(P) - exits == {P.COMPLETE, P.WITHDRAWN}


# --- responses brought to each phase by real messages --------------------------------------


def started(trailers: bool = False, headers: Any = ()) -> ResponseState:
    r = ResponseState(trailers_allowed=trailers)
    r.start({"status": 200, "headers": headers, "trailers": trailers})
    return r


def streaming(trailers: bool = False) -> ResponseState:
    r = started(trailers)
    r.body(b"a", True)
    return r


def trailers_due() -> ResponseState:
    r = started(True)
    r.body(b"a", False)
    return r


def trailers_open() -> ResponseState:
    r = trailers_due()
    r.send_trailers([(b"x-a", b"1")], True)
    return r


def complete(trailers: bool = False) -> ResponseState:
    if trailers:
        r = trailers_due()
        r.send_trailers([], False)
        return r
    r = started()
    r.body(b"", False)
    return r


def withdrawn() -> ResponseState:
    r = started(headers=[(b"content-length", b"1")])
    with pytest.raises(ASGIProtocolError, match="longer than its Content-Length"):
        r.body(b"ab", False)
    return r


SETUPS: dict[str, Callable[[], ResponseState]] = {
    "not-started": ResponseState,
    "started": started,
    "started-trailers": lambda: started(True),
    "streaming": streaming,
    "streaming-trailers": lambda: streaming(True),
    "trailers-due": trailers_due,
    "trailers": trailers_open,
    "complete": complete,
    "complete-trailers": lambda: complete(True),
    "withdrawn": withdrawn,
}
SETUP_PHASES = {
    "not-started": P.NOT_STARTED,
    "started": P.STARTED,
    "started-trailers": P.STARTED,
    "streaming": P.STREAMING,
    "streaming-trailers": P.STREAMING,
    "trailers-due": P.TRAILERS_DUE,
    "trailers": P.TRAILERS,
    "complete": P.COMPLETE,
    "complete-trailers": P.COMPLETE,
    "withdrawn": P.WITHDRAWN,
}


def _last_body(r: ResponseState) -> ResponseEvent:
    return E.LAST_BODY_BEFORE_TRAILERS if r.trailers else E.LAST_BODY


# Each ASGI message the protocols pass on: its name, the event it is for this state, and how
# to send it.  None: refused before the table is asked (trailers never declared).
MESSAGES: dict[
    str,
    tuple[
        str,
        Callable[[ResponseState], ResponseEvent | None],
        Callable[[ResponseState], object],
    ],
] = {
    "start": (
        "http.response.start",
        lambda r: E.START,
        lambda r: r.start({"status": 200, "headers": [(b"connection", b"close")]}),
    ),
    "body-more": ("http.response.body", lambda r: E.BODY, lambda r: r.body(b"x", True)),
    "body-last": ("http.response.body", _last_body, lambda r: r.body(b"", False)),
    "trailers-more": (
        "http.response.trailers",
        lambda r: E.TRAILER_FIELDS if r.trailers else None,
        lambda r: r.send_trailers([(b"x-b", b"2")], True),
    ),
    "trailers-last": (
        "http.response.trailers",
        lambda r: E.LAST_TRAILERS if r.trailers else None,
        lambda r: r.send_trailers([], False),
    ),
    "pathsend": ("http.response.pathsend", lambda r: E.FILE, lambda r: r.file_head(0)),
    "zerocopy-more": (
        "http.response.zerocopysend",
        lambda r: E.BODY,
        lambda r: r.file_body(1, True),
    ),
    "zerocopy-last": ("http.response.zerocopysend", _last_body, lambda r: r.file_body(0, False)),
}


def at(phase: ResponsePhase) -> ResponseState:
    """A ``ResponseState`` brought to ``phase`` by the messages of its first setup."""
    return SETUPS[next(name for name, p in SETUP_PHASES.items() if p is phase)]()


def test_setups_reach_their_phase() -> None:
    for name, make in SETUPS.items():
        r = make()
        assert r.phase is SETUP_PHASES[name], name
        assert flags(r) == FLAGS[r.phase], name


@pytest.mark.parametrize(("phase", "event"), list(ALLOWED))
def test_allowed_transition_gives_its_target_and_flags(
    phase: ResponsePhase, event: ResponseEvent
) -> None:
    r = at(phase)
    before = snapshot(r)
    target, moves, head_sent, complete = r._next(event, "msg")
    assert snapshot(r) == before  # looking a transition up changes nothing
    assert target is ALLOWED[phase, event]
    assert (True, head_sent, complete) == FLAGS[target]
    assert moves is at(target)._moves  # the next message is checked against the target


@pytest.mark.parametrize(("phase", "event"), FORBIDDEN)
def test_forbidden_transition_raises_naming_message_and_phase(
    phase: ResponsePhase, event: ResponseEvent
) -> None:
    r = at(phase)
    before = snapshot(r)
    with pytest.raises(ASGIProtocolError) as info:
        r._next(event, "http.response.something")
    text = str(info.value)
    assert text.startswith("http.response.something not allowed: ")
    assert text.endswith(f"(response phase {phase.name})")
    assert snapshot(r) == before


@pytest.mark.parametrize("message", list(MESSAGES))
@pytest.mark.parametrize("setup", list(SETUPS))
def test_every_message_in_every_phase_follows_the_table(setup: str, message: str) -> None:
    r = SETUPS[setup]()
    phase = r.phase
    name, event_of, send = MESSAGES[message]
    event = event_of(r)
    target = None if event is None else ALLOWED.get((phase, event))
    if target is None:
        before = snapshot(r)
        with pytest.raises(ASGIProtocolError) as info:
            send(r)
        assert str(info.value).startswith(name + " ")
        if event is not None:
            assert str(info.value).endswith(f"(response phase {phase.name})")
        # Refused messages change nothing: not the phase, not keep-alive, not the framing.
        assert snapshot(r) == before
    else:
        send(r)
        assert r.phase is target
        assert flags(r) == FLAGS[target]


def test_withdrawn_head_is_never_written_and_nothing_more_is_accepted() -> None:
    r = withdrawn()
    assert r.phase is P.WITHDRAWN and not r.head_sent and not r.complete
    # The head built for the refused body is gone; a retry must not write a head without it.
    for retry in (lambda: r.body(b"a", False), lambda: r.file_body(1, False)):
        with pytest.raises(ASGIProtocolError, match="refused"):
            retry()
    r = started(headers=[(b"content-length", b"1")])
    with pytest.raises(ASGIProtocolError):
        r.file_body(2, True)
    assert r.phase is P.WITHDRAWN


def test_overlong_later_body_is_refused_without_a_transition() -> None:
    r = started(headers=[(b"content-length", b"2")])
    r.body(b"a", True)
    with pytest.raises(ASGIProtocolError):
        r.body(b"bc", False)
    # The head is out, so there is no 500 to give; the app may still send what fits.
    assert r.phase is P.STREAMING
    assert r.body(b"b", False) == [b"b"]
    assert (r.phase, r.keep_alive) == (P.COMPLETE, True)


def test_refused_start_changes_nothing() -> None:
    r = ResponseState()
    before = snapshot(r)
    with pytest.raises(ASGIProtocolError):
        r.start({"status": 200, "headers": [(b"connection", b"close"), (b"bad name", b"v")]})
    assert snapshot(r) == before and r.keep_alive


def test_refused_trailer_field_keeps_the_last_chunk_due() -> None:
    r = trailers_due()
    with pytest.raises(ASGIProtocolError):
        r.send_trailers([(b"x-ok", b"1"), (b"bad name", b"v")], False)
    assert r.phase is P.TRAILERS_DUE
    # The last-chunk was not written with the refused message, so it comes now.
    assert r.send_trailers([(b"x-ok", b"1")], False) == [b"0\r\nx-ok: 1\r\n\r\n"]
    assert r.complete
