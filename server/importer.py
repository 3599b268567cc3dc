"""Turn ``"module:attr.sub"`` (or a callable) into an ASGI 3 application.

Two kinds of failure are kept apart because they need different advice:

* :class:`AppImportError` - the *path* is wrong (module not found, attribute missing, not
  callable).  That is a usage error: the CLI prints one line and exits 2.
* :class:`AppLoadError` - the user's module was found but raised while being imported (or the
  ``--factory`` callable raised).  The CLI prints what failed on one line, points at
  ``--log-level debug`` for the traceback, and exits 1.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
from typing import Any

from server.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("server.error")

DEBUG_HINT = "(run with --log-level debug for the traceback)"


class AppImportError(Exception):
    """The application path does not name a usable object."""


class AppLoadError(Exception):
    """Importing the user's module (or calling its factory) raised."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        # str(SyntaxError) names only the file's basename: ambiguous in a project with many
        # models.py/views.py, so give the full path and line.
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}, line {exc.lineno})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _add_app_dir(app_dir: str | None) -> None:
    # ``python -m`` puts the cwd on sys.path but the ``channels-server`` console script does not;
    # adding it (or --app-dir) makes both behave the same.
    path = os.path.abspath(app_dir if app_dir is not None else os.getcwd())
    if app_dir is not None and not os.path.isdir(path):
        # A typo here would otherwise surface as a confusing "could not import module".
        raise AppImportError(f"--app-dir {app_dir}: no such directory")
    if path not in sys.path:
        sys.path.insert(0, path)


def import_from_string(path: str) -> Any:
    module_name, sep, attrs = path.partition(":")
    if not sep or not module_name or not attrs:
        raise AppImportError(
            f"application path {path!r} must look like 'module:attribute', "
            f"e.g. 'myproject.asgi:application'"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise AppImportError(
                f"could not import module {module_name!r} (no module named {missing!r}); "
                f"check the path or use --app-dir"
            ) from exc
        logger.debug("Import of %r failed", module_name, exc_info=True)
        raise AppLoadError(
            f"importing {module_name!r} failed: {_describe(exc)} {DEBUG_HINT}"
        ) from exc
    except Exception as exc:
        logger.debug("Import of %r failed", module_name, exc_info=True)
        raise AppLoadError(
            f"importing {module_name!r} failed: {_describe(exc)} {DEBUG_HINT}"
        ) from exc

    obj: Any = module
    for part in attrs.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(
                f"attribute {attrs!r} not found in module {module_name!r}"
            ) from None
    return obj


def _is_asgi2(app: Any) -> bool:
    """ASGI 2 apps are ``app(scope)`` returning ``coroutine(receive, send)``.

    A class is treated as ASGI 2 (instantiated with the scope).  Otherwise the number of
    positional parameters decides: one means ASGI 2, anything else is assumed to be ASGI 3.
    """
    if inspect.isclass(app):
        # ASGI 3 also allows a class whose instances are awaitable: Cls(scope, receive, send).
        return not hasattr(app, "__await__")
    try:
        # signature() of an instance describes its __call__ without ``self``; partials and
        # decorated functions (functools.wraps) are resolved too.
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    if len(positional) == 1 and not has_varargs and inspect.iscoroutinefunction(app):
        # ASGI 2's outer callable is synchronous (it returns the coroutine function);
        # "async def app(scope)" would fail on the first request with a confusing TypeError.
        raise AppImportError(
            f"{app!r} is an async function taking one argument: neither ASGI 3 "
            f"(scope, receive, send) nor ASGI 2 (scope) -> async (receive, send)"
        )
    if not positional and not has_varargs:
        raise AppImportError(
            f"{app!r} takes no arguments, so it is not an ASGI application "
            f"(if it builds one, pass --factory)"
        )
    return len(positional) == 1 and not has_varargs


class ASGI2Adapter:
    """Present an ASGI 2 (double-callable) application as ASGI 3."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def load_app(app: Any, *, factory: bool = False, app_dir: str | None = None) -> ASGIApp:
    """Resolve ``app`` (import string or object) into an ASGI 3 callable."""
    label = app if isinstance(app, str) else getattr(app, "__qualname__", repr(app))
    if isinstance(app, str):
        _add_app_dir(app_dir)
        obj = import_from_string(app)
    elif app is None:
        raise AppImportError("no application given (pass 'module:attribute')")
    else:
        obj = app

    if factory:
        if not callable(obj):
            raise AppImportError(f"--factory: {label!r} is not callable")
        try:
            obj = obj()
        except Exception as exc:
            logger.debug("Application factory %r failed", label, exc_info=True)
            raise AppLoadError(
                f"application factory {label!r} raised {_describe(exc)} {DEBUG_HINT}"
            ) from exc
        if inspect.iscoroutine(obj):
            obj.close()  # never awaited: close it so Python doesn't warn about it at exit
            raise AppImportError(
                f"--factory: {label!r} is an async function; the factory must be a plain "
                f"callable returning the application"
            )

    if not callable(obj):
        hint = " (did you mean --factory?)" if not factory else ""
        raise AppImportError(
            f"{label!r} is not an ASGI application: {type(obj).__name__} is not callable{hint}"
        )
    if _is_asgi2(obj):
        return ASGI2Adapter(obj)
    asgi_app: ASGIApp = obj
    return asgi_app
