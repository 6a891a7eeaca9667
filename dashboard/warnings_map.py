"""The 预警 map layer: hot and emerging hot-spot villages, clusters and place-bound warnings.

Plain GeoJSON (no dash import), drawn by ``assets/warnings.js``. Names and reasons are data:
they travel as text properties and the browser shows them as text nodes. Shapes are shifted
for a GCJ-02 basemap at this edge only, like :mod:`dashboard.map`.
"""

from __future__ import annotations

import numpy as np

from dashboard.map import display_crs, web_units
from geo.codes import level_of, prefix_of
from geo.crs import from_wgs84, transform_geometry
from geo.store import Store
from layers.warnings.storage import on_revision
from layers.warnings.views import hot_units, map_points

HOT_COLOURS = {"emerging": "#d7191c", "hot": "#fdae61"}
HOT_LABELS = {"emerging": "新发热点", "hot": "持续热点"}
POINT_COLOURS = {"red": "#b2182b", "yellow": "#e6a100"}


def hotspot_features(store: Store, scope: str) -> dict:
    """The hot villages inside ``scope`` as polygons coloured hot / emerging (cached)."""
    return on_revision(store, ("warning_hot_features", scope), lambda: _hot(store, scope))


def point_features(store: Store, scope: str) -> dict:
    """Clusters (with their radius), collective petitions and other place-bound warnings."""
    return on_revision(store, ("map_points", scope), lambda: _points(store, scope))


def _hot(store: Store, scope: str) -> dict:
    status = hot_units(store)
    units = web_units(store, "village")
    if level_of(scope) != "city":
        units = units[units["code"].astype(str).str.startswith(prefix_of(scope))]
    units = units[units["code"].isin(list(status))]
    crs = display_crs(store.settings.basemap)
    if crs != "wgs84" and len(units):
        units = transform_geometry(units, source="wgs84", target=crs)
    features = []
    for code, name, geometry in zip(units["code"], units["name"], units.geometry, strict=True):
        kind = status[code]
        features.append({
            "type": "Feature", "geometry": geometry.__geo_interface__,
            "properties": {"code": str(code), "status": kind, "fill": HOT_COLOURS[kind],
                           "tooltip": f"{name}\n{HOT_LABELS[kind]}（Gi*）"},
        })
    return {"type": "FeatureCollection", "features": features}


def _points(store: Store, scope: str) -> dict:
    points = map_points(store, scope)
    crs = display_crs(store.settings.basemap)
    lon, lat = points["lon"].to_numpy(float), points["lat"].to_numpy(float)
    if crs != "wgs84" and len(points):
        lon, lat = from_wgs84(lon, lat, crs)
    features = []
    for row, x, y in zip(points.itertuples(index=False), np.atleast_1d(lon), np.atleast_1d(lat),
                         strict=True):
        radius = row.radius_m if row.radius_m == row.radius_m and row.radius_m else None
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(float(x), 6), round(float(y), 6)]},
            "properties": {"id": row.id, "rule": row.rule, "colour": POINT_COLOURS[row.level],
                           "radius_m": radius, "tooltip": f"{row.rule_zh}\n{row.reason}"},
        })
    return {"type": "FeatureCollection", "features": features}
