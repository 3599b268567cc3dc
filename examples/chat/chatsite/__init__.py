"""Django project package of the chat example."""
