"""Django Channels-compatible framework bundled with channels-server.

The public module layout matches upstream Channels 4.x so existing projects import the same
names (``channels.consumer``, ``channels.routing``, ``channels.layers`` ...).
"""

__version__ = "4.2.0"

# Alias of the channel layer used when none is named (``CHANNEL_LAYERS["default"]``).
DEFAULT_CHANNEL_LAYER = "default"


def _refuse_mixed_install() -> None:
    """Fail at once when another project's distribution owns files of our packages.

    Installing a package that requires ``channels`` pulls upstream Channels in, which
    overwrites this package's files (then this code may not even run: the server's start-up
    check catches that case) or lands next to them.  Three metadata look-ups on import; the
    message with the command to run is built by ``server.installation``.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    for name in ("channels", "daphne", "channels-redis"):
        try:
            distribution(name)
        except PackageNotFoundError:
            continue
        try:
            from server.installation import installation_problem
        except ImportError:  # our server package shadowed too: say what we know
            problem: str | None = (
                f"the {name!r} distribution is installed next to channels-server and replaces "
                f"its own packages; uninstall it and reinstall channels-server"
            )
        else:
            problem = installation_problem()
        if problem is not None:
            raise RuntimeError(f"channels-server: {problem}")


_refuse_mixed_install()
