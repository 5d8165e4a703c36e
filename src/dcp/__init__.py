"""DCP: a GPU compute marketplace (server, provider daemon and web pages)."""

__version__ = "0.1.0"
