"""``ApplicationCommunicator``: drive an ASGI app in tests without a server."""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator as BaseApplicationCommunicator


class ApplicationCommunicator(BaseApplicationCommunicator):
    """asgiref's communicator (``send_input``, ``receive_output``, ``receive_nothing``,
    ``wait``) with typed signatures."""

    # asgiref's __del__ reads this; a subclass __init__ that rejects its arguments before
    # calling ours must not turn into an "exception ignored in __del__".
    _future: Any = None

    def __init__(self, application: Any, scope: dict[str, Any]) -> None:
        super().__init__(application, scope)  # type: ignore[no-untyped-call]

    async def send_input(self, message: dict[str, Any]) -> None:
        await super().send_input(message)  # type: ignore[no-untyped-call]

    async def receive_output(self, timeout: float = 1) -> Any:  # noqa: ASYNC109 - upstream API
        return await super().receive_output(timeout)  # type: ignore[no-untyped-call]

    async def receive_nothing(
        self,
        timeout: float = 0.1,  # noqa: ASYNC109 - upstream API
        interval: float = 0.01,
    ) -> bool:
        result: bool = await super().receive_nothing(timeout, interval)  # type: ignore[no-untyped-call]
        return result

    async def wait(self, timeout: float = 1) -> None:  # noqa: ASYNC109 - upstream API
        await super().wait(timeout)  # type: ignore[no-untyped-call]

    def stop(self, exceptions: bool = True) -> None:
        super().stop(exceptions)  # type: ignore[no-untyped-call]
