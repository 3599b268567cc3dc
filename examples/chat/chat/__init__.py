"""The chat app: an index page, one page per room and the WebSocket consumer behind it."""
