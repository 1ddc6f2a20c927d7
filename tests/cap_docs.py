"""CAP 1.2 documents written for the tests, modelled on national hydro-meteorological feeds."""

from __future__ import annotations

from datetime import datetime, timedelta

SENDER = "canhbao@nchmf.gov.vn"
# Communes c1 (lat 10.01) and c2 (lat 10.02) of fleet_small, not c3 (lat 10.03); lon 105.71-105.72.
POLYGON = "10.005,105.70 10.025,105.70 10.025,105.73 10.005,105.73 10.005,105.70"
# 0.8 km around the middle of c3's clusters (0.55 km from each; c2's are 1.24 km away).
CIRCLE = "10.03,105.715 0.8"


def moment(at: datetime) -> str:
    """A CAP dateTime: seconds, explicit offset (the schema refuses Z), here Vietnam's +07:00."""
    return at.astimezone(_VN).strftime("%Y-%m-%dT%H:%M:%S+07:00")


def alert(
    identifier: str,
    sent: datetime,
    *,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str = "",
    expires: datetime | None = None,
    severity: str = "Extreme",
    urgency: str = "Immediate",
    certainty: str = "Observed",
    risk_level: int | None = 4,
    area: str = "",
    english_first: bool = True,
) -> bytes:
    """A CAP alert with an English and a Vietnamese info block; `area` is the inner XML of <area>."""
    refs = f"<references>{references}</references>" if references else ""
    infos = [
        _info_en(severity, urgency, certainty, expires, area),
        _info_vi(severity, urgency, certainty, expires, risk_level, area),
    ]
    if not english_first:
        infos.reverse()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{SENDER}</sender>
  <sent>{moment(sent)}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  {"".join(infos)}
</alert>""".encode()


def reference(identifier: str, sent: datetime) -> str:
    """The `references` triple naming an earlier alert."""
    return f"{SENDER},{identifier},{moment(sent)}"


def polygon_area() -> str:
    return f"<areaDesc>Xã 1 và Xã 2</areaDesc><polygon>{POLYGON}</polygon>"


def circle_area() -> str:
    return f"<areaDesc>Xã 3</areaDesc><circle>{CIRCLE}</circle>"


def geocode_area(value: str = "31471") -> str:
    return f"<areaDesc>Xã 2</areaDesc><geocode><valueName>VN-ADM</valueName><value>{value}</value></geocode>"


def _expires(at: datetime | None) -> str:
    return f"<expires>{moment(at)}</expires>" if at else ""


def _info_en(sev: str, urg: str, cert: str, expires: datetime | None, area: str) -> str:
    return f"""<info><language>en-US</language><category>Met</category><event>Flood</event>
    <urgency>{urg}</urgency><severity>{sev}</severity><certainty>{cert}</certainty>{_expires(expires)}
    <headline>Flash flood warning</headline><description>Water rising.</description>
    <area>{area or "<areaDesc>none</areaDesc>"}</area></info>"""


def _info_vi(sev: str, urg: str, cert: str, expires: datetime | None, risk: int | None, area: str) -> str:
    param = (
        f"<parameter><valueName>risk_level</valueName><value>Cấp {risk}</value></parameter>" if risk else ""
    )
    return f"""<info><language>vi-VN</language><category>Met</category><event>Lũ quét</event>
    <urgency>{urg}</urgency><severity>{sev}</severity><certainty>{cert}</certainty>{_expires(expires)}
    <headline>Cảnh báo lũ quét</headline>
    <description>Mực nước sông Hậu lên 2,5 m lúc 14 giờ ngày 30/11/2026.</description>
    <instruction>Người dân di chuyển lên chỗ cao, không qua ngầm tràn.</instruction>{param}
    <area>{area or "<areaDesc>không</areaDesc>"}</area></info>"""


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

MALFORMED = b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>x</identifier>"

from datetime import timezone as _tz  # noqa: E402

_VN = _tz(timedelta(hours=7))
