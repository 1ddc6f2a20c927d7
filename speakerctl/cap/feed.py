"""The links of a CAP feed index: an Atom feed (national services, OASIS CAP feeds note) or RSS 2.0.

Each entry links to one CAP document; an Atom entry may name several links, and the one typed
`application/cap+xml` (or, failing that, the `alternate`/first one) is taken. Parsed with defusedxml,
DTDs forbidden, like the alerts themselves.
"""

from __future__ import annotations

from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_xml

from speakerctl.errors import AlertRejected
from speakerctl.i18n import _

ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TYPE = "application/cap+xml"
MAX_INDEX_BYTES = 4 * 1024 * 1024
"""Largest feed index accepted."""


def feed_links(data: bytes, base_url: str) -> list[str]:
    """Absolute URLs of the CAP documents the index lists, in its order, each once."""
    root = _root(data)
    found = _atom_links(root) if root.tag == ATOM + "feed" else _rss_links(root)
    links = [urljoin(base_url, href) for href in found if href]
    return list(dict.fromkeys(links))


def _root(data: bytes) -> Element:
    if len(data) > MAX_INDEX_BYTES:
        raise AlertRejected(_("CAP feed index of {size} bytes is too large").format(size=len(data)))
    try:
        root: Element = safe_xml.fromstring(data, forbid_dtd=True)
    except (defusedxml.DefusedXmlException, ParseError, ValueError, LookupError) as exc:
        raise AlertRejected(
            _("CAP feed index is not safe, well-formed XML: {error}").format(error=exc)
        ) from exc
    if root.tag not in (ATOM + "feed", "rss"):
        raise AlertRejected(
            _("CAP feed index is neither Atom nor RSS (root {tag})").format(tag=root.tag),
            hint=_("point cap_feed_url at the Atom or RSS index of the CAP service"),
        )
    return root


def _atom_links(root: Element) -> list[str]:
    return [_entry_link(entry) for entry in root.findall(ATOM + "entry")]


def _entry_link(entry: Element) -> str:
    links = entry.findall(ATOM + "link")
    typed = [lk for lk in links if lk.get("type") == CAP_TYPE]
    alternate = [lk for lk in links if lk.get("rel", "alternate") == "alternate"]
    chosen = typed or alternate or links
    return (chosen[0].get("href") or "") if chosen else ""


def _rss_links(root: Element) -> list[str]:
    return [(item.findtext("link") or "").strip() for item in root.iter("item")]
