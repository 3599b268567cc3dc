"""A module that fails while being imported (its own import error, not a bad path)."""

from __future__ import annotations

import this_dependency_is_missing  # type: ignore[import-not-found]  # noqa: F401

app = None
