"""The operator console, its JSON API and Prometheus metrics (aiohttp, in the controller's loop)."""

from speakerctl.app.runtime import FrontEndFactory
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.web.api import openapi_text
from speakerctl.web.server import WebServer, parse_bind

__all__ = ["WebServer", "front_end", "openapi_text", "parse_bind"]


def front_end(bind: str) -> FrontEndFactory:
    """The web server on HOST:PORT, as `serve` starts it beside the controller."""
    host, port = parse_bind(bind)

    def build(controller: Controller, policy: HealthPolicy) -> WebServer:
        return WebServer(controller, policy, host, port)

    return build
