"""Connection-level security checks (WebSocket Origin validation)."""
