"""Channel and group name rules: upstream Channels 4.3's exception types, messages and
deprecated spellings, which projects' own tests compare."""

from __future__ import annotations

import pytest

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, InvalidChannelName

RULES = (
    "name must be a valid unicode string with length < 100 containing only ASCII "
    "alphanumerics, hyphens, underscores, or periods."
)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("Channel", BaseChannelLayer().require_valid_channel_name),
        ("Group", BaseChannelLayer().require_valid_group_name),
    ],
)
@pytest.mark.parametrize("name", ["a" * 100, "¯\\_(ツ)_/¯", "", "sp ace", "trailing\n"])
def test_bad_names_raise_upstreams_type_error_and_message(
    kind: str, check: object, name: str
) -> None:
    assert callable(check)
    with pytest.raises(TypeError) as info:
        check(name)
    assert str(info.value) == f"{kind} {RULES}"
    assert isinstance(info.value, InvalidChannelName)
    assert isinstance(info.value, ValueError)  # what a bad value is, for new code
    # The offending name is in the traceback (a note), not in the message.
    assert repr(name) in "".join(info.value.__notes__)


def test_upstream_test_idiom_matches() -> None:
    """Upstream's own tests format ``invalid_name_error`` with the kind alone."""
    layer = BaseChannelLayer()
    with pytest.raises(TypeError, match=layer.invalid_name_error.format("Group")):
        layer.require_valid_group_name("a" * 101)
    with pytest.raises(TypeError, match=layer.invalid_name_error.format("Channel")):
        layer.require_valid_channel_name("a" * 101)


def test_non_strings_are_plain_type_errors() -> None:
    layer = BaseChannelLayer()
    for bad in (None, 42, b"bytes"):
        with pytest.raises(TypeError) as info:
            layer.require_valid_channel_name(bad)
        assert type(info.value) is TypeError
        assert str(info.value) == f"Channel {RULES}"


def test_receive_names_must_end_at_the_bang() -> None:
    layer = BaseChannelLayer()
    assert layer.require_valid_channel_name("specific.abc!", receive=True)
    assert layer.require_valid_channel_name("specific.abc!def")
    with pytest.raises(TypeError) as info:
        layer.require_valid_channel_name("specific.abc!def", receive=True)
    assert str(info.value) == "Specific channel names in receive() must end at the !"


def test_deprecated_spellings_warn_like_upstream_and_still_check() -> None:
    layer = InMemoryChannelLayer()
    with pytest.warns(
        DeprecationWarning,
        match=r"^valid_channel_name is deprecated, use require_valid_channel_name instead\.$",
    ):
        assert layer.valid_channel_name("valid-channel")
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        layer.valid_channel_name("¯\\_(ツ)_/¯")
    with pytest.warns(
        DeprecationWarning,
        match=r"^valid_group_name is deprecated, use require_valid_group_name instead\.$",
    ):
        assert layer.valid_group_name("valid-group")
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        layer.valid_group_name("a" * 100)
