"""Which clusters a CAP area covers: polygons with shapely, circles by great-circle distance.

A polygon's boundary counts as inside (`covers`), so a cluster on a commune line is not left out. A
circle is measured on the sphere (haversine), because the CAP radius is in kilometres and a degree of
longitude is not one of latitude; shapely would need a projection for the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon
from shapely.prepared import prep

from speakerctl.cap.model import Area, Circle

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG), the one WGS 84 great-circle distances use."""


@dataclass(frozen=True, slots=True)
class Point:
    """A cluster where the inventory places it."""

    id: str
    lat: float
    lon: float


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_circle(circle: Circle, lat: float, lon: float) -> bool:
    """Whether the point is within the circle (its edge included)."""
    return distance_km(circle.lat, circle.lon, lat, lon) <= circle.radius_km


def in_polygon(ring: tuple[tuple[float, float], ...], lat: float, lon: float) -> bool:
    """Whether the point is inside the CAP polygon or on its boundary (shapely works in lon, lat)."""
    return bool(_polygon(ring).covers(ShapelyPoint(lon, lat)))


def inside(area: Area, lat: float, lon: float) -> bool:
    """Whether the point is in one of the area's polygons or circles."""
    return any(in_polygon(r, lat, lon) for r in area.polygons) or any(
        in_circle(c, lat, lon) for c in area.circles
    )


def covered(areas: Iterable[Area], points: Iterable[Point]) -> set[str]:
    """The ids of the points inside any of the areas' shapes (each polygon built and prepared once)."""
    areas = list(areas)
    polygons = [prep(_polygon(r)) for a in areas for r in a.polygons]
    circles = [c for a in areas for c in a.circles]
    return {
        p.id
        for p in points
        if any(poly.covers(ShapelyPoint(p.lon, p.lat)) for poly in polygons)
        or any(in_circle(c, p.lat, p.lon) for c in circles)
    }


def _polygon(ring: tuple[tuple[float, float], ...]) -> Polygon:
    return Polygon([(lo, la) for la, lo in ring])
