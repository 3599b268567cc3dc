"""The Django project every server runs for workloads B, C, D and E.

It imports ``channels`` and runs against whichever ``channels`` is first on ``sys.path``: this
repository's package when our server runs it, upstream Channels in the peers' virtualenv.
"""
