"""Templates: one Jinja2 environment (autoescaped, gettext through jinja2.ext.i18n), local-time filters.

Each render gets the catalogue of the request's language as `gettext`/`ngettext` (the i18n extension's
`_()` and `{% trans %}` look them up in the context), so two users in two languages share one environment.
"""

from __future__ import annotations

import contextlib
import gettext
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from speakerctl import i18n
from speakerctl.app.labels import kind_name, word, zone_title
from speakerctl.clock import Clock
from speakerctl.dates import format_clock, format_moment, zone_label

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


def catalogue(lang: str) -> gettext.NullTranslations:
    """The translations of one language (compiled once)."""
    return i18n.translations(lang)


def setup(app: web.Application, timezone: str, clock: Clock) -> jinja2.Environment:
    """Install the environment on the aiohttp application, with local-time filters for `timezone`."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("speakerctl.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    tz = ZoneInfo(timezone)
    env.filters["clock"] = lambda t: format_clock(t, tz, label=False) if t else ""
    env.filters["local"] = lambda t: format_moment(t, tz) if t else ""
    env.filters["day"] = lambda t: t.strftime("%d/%m") if t else ""
    env.globals |= {"word": word, "kind_name": kind_name, "zone_title": zone_title}
    env.globals["timezone"] = timezone
    env.globals["zone_label"] = lambda: f"{timezone}, {zone_label(tz, clock.now())}"
    return env


def language_values(lang: str) -> dict[str, Any]:
    """What every template needs to speak `lang`."""
    t = catalogue(lang)
    return {"gettext": t.gettext, "ngettext": t.ngettext, "lang": lang}


def speaking(lang: str) -> contextlib.AbstractContextManager[None]:
    """`_()` in `lang` for one render (the labels the templates call), in this task only: the CLI that
    runs `serve` and other readers' requests keep their own language."""
    return i18n.reading(lang)


def respond(
    request: web.Request, template: str, lang: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """A template rendered in the reader's language as the response."""
    with speaking(lang):
        return aiohttp_jinja2.render_template(template, request, context, status=status)


def fragment(env: jinja2.Environment, name: str, lang: str, **values: Any) -> str:
    """A part of a page rendered alone (the same template the page includes), on one line for SSE."""
    with speaking(lang):
        html = env.get_template(name).render(**language_values(lang), **values)
    return " ".join(line.strip() for line in html.splitlines() if line.strip())
