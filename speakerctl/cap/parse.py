"""Parse a CAP 1.2 document safely and validate it against the OASIS schema (CAP-v1.2.xsd, vendored).

Safety first, in this order: a size cap before any parsing; defusedxml with DTDs forbidden (CAP never
uses one, so entity expansion and external entities are refused outright, not merely limited); then
the schema (xmlschema), so the mapping below may rely on every required element being there.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from importlib import resources
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_xml
import xmlschema

from speakerctl.cap.model import Alert, AlertKey, Area, Circle, Info, MsgType, Reference, Status
from speakerctl.errors import AlertRejected
from speakerctl.i18n import _

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_BYTES = 512 * 1024
"""Largest CAP document accepted; national feeds' alerts are a few kilobytes."""
_Q = "{" + NS + "}"


@functools.cache
def schema() -> xmlschema.XMLSchema10:
    """The CAP 1.2 schema, built once (it takes a moment)."""
    source = resources.files("speakerctl.cap").joinpath("CAP-v1.2.xsd").read_text(encoding="utf-8")
    return xmlschema.XMLSchema10(source)


def parse_alert(data: bytes, max_bytes: int = MAX_BYTES) -> Alert:
    """The alert in `data`, or AlertRejected saying why (too large, not XML, hostile, invalid)."""
    root = _element(data, max_bytes)
    error = next(iter(schema().iter_errors(root)), None)
    if error is not None:
        reason = error.reason or str(error.message)
        raise AlertRejected(
            _("not a valid CAP 1.2 alert: {reason}").format(reason=reason.splitlines()[0][:300]),
            hint=_("the document must validate against CAP-v1.2.xsd (namespace {ns})").format(ns=NS),
        )
    return _alert(root)


def _element(data: bytes, max_bytes: int) -> Element:
    if len(data) > max_bytes:
        raise AlertRejected(
            _("CAP document of {size} bytes is larger than {limit}").format(size=len(data), limit=max_bytes)
        )
    try:
        return safe_xml.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise AlertRejected(
            _("CAP document refused: it declares a DTD or entities ({kind})").format(kind=type(exc).__name__),
            hint=_("CAP 1.2 needs no DTD; a document with one may be an entity-expansion attack"),
        ) from exc
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: an unknown encoding declared
        raise AlertRejected(_("CAP document is not well-formed XML: {error}").format(error=exc)) from exc


def _text(parent: Element, tag: str) -> str:
    found = parent.find(_Q + tag)
    return (found.text or "").strip() if found is not None else ""


def _texts(parent: Element, tag: str) -> list[str]:
    return [(e.text or "").strip() for e in parent.findall(_Q + tag)]


def _moment(value: str) -> datetime:
    """A CAP dateTime in UTC; ValueError without its offset (CAP requires one: no local guessing)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment.astimezone(UTC)


def _alert(root: Element) -> Alert:
    key = AlertKey(_text(root, "sender"), _text(root, "identifier"), _moment(_text(root, "sent")))
    return Alert(
        key=key,
        status=Status(_text(root, "status")),
        msg_type=MsgType(_text(root, "msgType")),
        scope=_text(root, "scope"),
        references=_references(_text(root, "references")),
        infos=tuple(_info(e) for e in root.findall(_Q + "info")),
    )


def _references(value: str) -> tuple[Reference, ...]:
    """`sender,identifier,sent` triples separated by spaces; a malformed one is an invalid alert."""
    refs = []
    for triple in value.split():
        parts = triple.split(",")
        try:
            refs.append(Reference(parts[0], parts[1], _moment(parts[2])))
        except (IndexError, ValueError) as exc:
            raise AlertRejected(
                _("CAP references entry {entry!r} is not sender,identifier,sent").format(entry=triple)
            ) from exc
    return tuple(refs)


def _info(e: Element) -> Info:
    expires = _text(e, "expires")
    return Info(
        language=_text(e, "language") or "en-US",
        event=_text(e, "event"),
        urgency=_text(e, "urgency"),
        severity=_text(e, "severity"),
        certainty=_text(e, "certainty"),
        headline=_text(e, "headline"),
        description=_text(e, "description"),
        instruction=_text(e, "instruction"),
        expires=_moment(expires) if expires else None,
        parameters=tuple(_pairs(e, "parameter")),
        areas=tuple(_area(a) for a in e.findall(_Q + "area")),
    )


def _pairs(parent: Element, tag: str) -> list[tuple[str, str]]:
    return [(_text(p, "valueName"), _text(p, "value")) for p in parent.findall(_Q + tag)]


def _area(e: Element) -> Area:
    return Area(
        description=_text(e, "areaDesc"),
        polygons=tuple(_polygon(p) for p in _texts(e, "polygon")),
        circles=tuple(_circle(c) for c in _texts(e, "circle")),
        geocodes=tuple(_pairs(e, "geocode")),
    )


def _point(pair: str) -> tuple[float, float]:
    lat, lon = pair.split(",")
    return float(lat), float(lon)


def _polygon(value: str) -> tuple[tuple[float, float], ...]:
    """CAP: four or more `lat,lon` pairs, the first and last the same."""
    try:
        ring = tuple(_point(p) for p in value.split())
    except ValueError as exc:
        raise AlertRejected(_("CAP polygon {value!r} is not lat,lon pairs").format(value=value[:80])) from exc
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise AlertRejected(_("CAP polygon needs 4 or more points, closed (first = last)"))
    return ring


def _circle(value: str) -> Circle:
    """CAP: `lat,lon radius`, the radius in kilometres."""
    try:
        centre, radius = value.split()
        lat, lon = _point(centre)
        return Circle(lat, lon, float(radius))
    except ValueError as exc:
        raise AlertRejected(
            _("CAP circle {value!r} is not 'lat,lon radius'").format(value=value[:80])
        ) from exc
