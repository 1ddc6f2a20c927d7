"""The operator web page, its JSON API and Prometheus metrics (aiohttp, in the controller's loop)."""

from speakerctl.web.server import WebServer, parse_bind

__all__ = ["WebServer", "parse_bind"]
