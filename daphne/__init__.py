"""Compatibility shim for Channels 4 projects that list ``"daphne"`` in ``INSTALLED_APPS``.

Channels 4 tells projects to put ``"daphne"`` first in ``INSTALLED_APPS`` so that its
``runserver`` serves ASGI.  This package lets such settings load unchanged once Daphne is
uninstalled: the app label ``daphne`` exists and its ``runserver`` is channels-server's.
It contains no server of its own; ``daphne`` on the command line runs ``python -m server``.
"""

from __future__ import annotations

__version__ = "4.1.0+channels-server"
