"""CAP benchmark: how long the safe gate (size cap, defusedxml without DTDs, the OASIS schema, the
mapping to values) and the area test take per alert, against the bare parse they build on.

  cap_parse_us             parse_alert of a typical alert (two info blocks, a polygon, a circle)
  cap_baseline_parse_us    the standard library's ElementTree.fromstring of the same bytes
  cap_parse_ratio          parse_alert / baseline (the price of validation; an alert a minute is the
                           national feeds' pace, so milliseconds are what matters, not the ratio)
  cap_area_279_ms          covered(): which of the Sóc Trăng inventory's 279 clusters lie in the alert
  cap_refuse_lol_us        refusing a billion-laughs document (no entity is ever expanded)

Usage: .venv/bin/python bench/cap.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cap_docs import BILLION_LAUGHS, alert

from speakerctl.cap import Point, parse_alert
from speakerctl.cap.area import covered
from speakerctl.errors import AlertRejected
from speakerctl.fleet import load_inventory

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
AREA = (
    "<areaDesc>Kế Sách</areaDesc>"
    "<polygon>9.70,105.80 9.95,105.80 9.95,106.05 9.70,106.05 9.70,105.80</polygon>"
    "<circle>9.60,105.97 8</circle>"
)


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` over `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def refuse() -> None:
    with contextlib.suppress(AlertRejected):
        parse_alert(BILLION_LAUGHS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    repeats = parser.parse_args().repeats
    doc = alert("BENCH-1", NOW, expires=NOW + timedelta(hours=6), area=AREA)
    parse_alert(doc)  # the schema is built once, outside the timing
    ours = median_s(lambda: parse_alert(doc), repeats)
    base = median_s(lambda: ElementTree.fromstring(doc), repeats)
    info = parse_alert(doc).info()
    assert info is not None
    points = [Point(d.id, d.lat, d.lon) for d in load_inventory("soc_trang").devices]
    area = median_s(lambda: covered(info.areas, points), max(10, repeats // 10))
    inside = len(covered(info.areas, points))
    print(f"cap_parse_us: {ours * 1e6:.0f}")
    print(f"cap_baseline_parse_us: {base * 1e6:.0f}")
    print(f"cap_parse_ratio: {ours / base:.1f}")
    print(f"cap_area_279_ms: {area * 1e3:.2f}")
    print(f"cap_area_inside: {inside} of {len(points)}")
    print(f"cap_refuse_lol_us: {median_s(refuse, repeats) * 1e6:.0f}")


if __name__ == "__main__":
    main()
