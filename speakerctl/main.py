"""The process entry point, above the two adapters: the CLI, given the web front end `serve --http` runs.

`cli` and `web` are siblings that never import each other; this is the one place that knows both.
"""

from __future__ import annotations

from speakerctl import web
from speakerctl.cli import main as cli
from speakerctl.cli.common import state


def main() -> None:
    """Run `speakerctl` with the operator web page available to `serve --http`."""
    state.web = web.front_end
    state.openapi = web.openapi_text
    cli.main()
