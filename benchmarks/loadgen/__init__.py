"""Load generators that run in their own process, pinned to a core the server does not use."""
