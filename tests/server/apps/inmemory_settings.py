"""Minimal Django settings whose channel layer is the in-memory one (supervisor warning test)."""

SECRET_KEY = "test-only"
INSTALLED_APPS = ["channels"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
