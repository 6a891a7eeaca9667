"""Map builders: plain GeoJSON and legend data for the Leaflet map, and the standalone export.

Nothing here imports dash: the same :class:`MapLayer` feeds the dash-leaflet map in the
browser and :func:`standalone_html`, the standalone HTML file a user downloads, so both show the
same colours, legend and tooltips. Geometry is stored in WGS-84; for AMap tiles (GCJ-02)
every shape and point is shifted with :func:`geo.crs.transform_geometry` at this edge only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import numpy as np

from geo.codes import level_of
from geo.crs import from_wgs84, transform_geometry
from geo.store import Store, current_boundary_version, read_units
from geo.vocab import STATION_TYPE_ZH, STATION_TYPES
from layers.filters import Filters
from layers.points import CasePoints
from layers.units import child_level, unit_of
from layers.views import station_table, unit_metrics

BASEMAPS: dict[str, dict | None] = {
    "osm": {
        "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attribution": "© OpenStreetMap contributors",
        "crs": "wgs84",
    },
    "amap": {
        "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
               "&x={x}&y={y}&z={z}",
        "attribution": "© 高德地图",
        "subdomains": "1234",
        "crs": "gcj02",
    },
    "tianditu": {
        "url": "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}",
        "attribution": "© 天地图",
        "subdomains": "01234567",
        "crs": "wgs84",
    },
    "none": None,
}
"""Basemaps: tile URL, attribution and the coordinate system their tiles are drawn in."""

STATION_COLOURS = {
    "hall": "#7b3294",
    "centre": "#1b7837",
    "station": "#01665e",
    "mediation": "#c51b7d",
}
"""Station markers by type, ringed in black: purple, green, teal, magenta, none of them the
red, amber, blue or grey of the case points (ringed in white), so a station never reads as a
case."""
URGENCY_ZH = {"overdue": "超期", "soon": "临期", "ok": "办理中", "none": "已办结"}
URGENCY_COLOURS = {"overdue": "#d7191c", "soon": "#f59e0b", "ok": "#0571b0", "none": "#8c8c8c"}
"""Case points by urgency (layers.rules): 超期 red, 临期 amber, 办理中 blue, 已结 grey."""
COVERAGE_METRICS = ("covered_pop_share", "covered_area_share", "nearest_station_m",
                    "nearest_centre_m", "nearest_hall_m", "nearest_mediation_m")
"""Metrics that come from station coverage (computed with the metrics only when mapped)."""


@dataclass
class MapLayer:
    """What the choropleth shows for one scope: features, legend, bounds and the unassigned count."""

    scope_code: str
    scope_name: str
    level: str
    metric: str
    metric_label: str
    features: dict
    legend: list[tuple[str, str]]
    bounds: list[list[float]]
    unassigned: int
    crs: str = "wgs84"
    extra: dict = field(default_factory=dict)
    legend_notes: list[str] = field(default_factory=list)
    """Under the legend: how the classes were made, and the city's (and parent's) value."""
    labels: dict = field(default_factory=lambda: {"type": "FeatureCollection", "features": []})
    """Unit names as points inside each unit (districts and streets; villages are too many)."""


def basemap_spec(name: str) -> dict | None:
    """Return the tile layer spec of a basemap (None draws polygons on a plain background)."""
    if name not in BASEMAPS:
        raise ValueError(f"未知底图 {name!r}，可选 {sorted(BASEMAPS)} / unknown basemap {name!r}")
    return BASEMAPS[name]


def display_crs(basemap: str) -> str:
    """Return the coordinate system shapes must be drawn in over this basemap."""
    spec = basemap_spec(basemap)
    return spec["crs"] if spec else "wgs84"


def unit_layer(
    store: Store,
    scope_code: str,
    *,
    metric: str,
    filters: Filters,
    as_of=None,
    fixed: bool = False,
    with_city: bool = False,
) -> MapLayer:
    """Build the choropleth of ``metric`` over the children of ``scope_code`` (a village shows itself).

    Memoised in the store per version and arguments, as the metrics under it are: everyone
    whose view shows the same scope (a district's leaders and street offices, the city's
    leaders at their morning meeting) gets one map, and building it (the styled GeoJSON, its
    legend and labels) was most of the map callback's time (py-spy of ``bench/bench_load.py``).
    Callers must not modify the returned layer.

    Returns
    -------
    MapLayer
        Features from :func:`layers.style.map_features`, the legend from
        :func:`layers.style.classify` (for the units shown, or the fixed breaks when
        ``fixed``), bounds as [[south, west], [north, east]]. The legend notes name the
        scope's own value, and the city's only ``with_city`` (an account of the whole city:
        the city figure depends on cases outside any smaller scope).
    """
    key = ("map_layer", scope_code, metric, filters, as_of, fixed, with_city)
    return store.cached(key, lambda: _unit_layer(store, scope_code, metric=metric,
                                                 filters=filters, as_of=as_of, fixed=fixed,
                                                 with_city=with_city), shared=True)


def _unit_layer(store: Store, scope_code: str, *, metric: str, filters: Filters, as_of,  # noqa: ANN001
                fixed: bool, with_city: bool) -> MapLayer:
    """:func:`unit_layer`, built from scratch."""
    from layers.definitions import METRICS
    from layers.style import classify, feature_columns, legend_entries, map_features

    scope = unit_of(store, scope_code)
    level = child_level(scope.level) or scope.level
    units = web_units(store, level)
    parent = scope_code if scope.level != "city" and level != scope.level else None
    if parent:
        units = units[units["parent_code"] == parent]
    elif level == scope.level and scope.level != "district":
        units = units[units["code"] == scope_code]
    metrics = unit_metrics(store, level=level, filters=filters, parent_code=parent, as_of=as_of,
                           with_coverage=metric in COVERAGE_METRICS)
    metrics = metrics[[c for c in dict.fromkeys(("code", "row_type", "cases",
                                                 *feature_columns(metric))) if c in metrics]]
    unit_rows = metrics[(metrics["row_type"] == "unit") & metrics["code"].isin(units["code"])]
    legend = classify(unit_rows, metric, fixed=fixed)
    crs = display_crs(store.settings.basemap)
    shown = units if crs == "wgs84" else transform_geometry(units, source="wgs84", target=crs)
    features = map_features(shown, unit_rows, metric, legend=legend)
    sources = dict(zip(shown["code"], shown["geometry_source"], strict=True))
    for feature in features["features"]:
        feature["properties"]["geometry_source"] = sources.get(feature["properties"]["code"])
    unassigned = metrics.loc[metrics["row_type"] == "unassigned", "cases"]
    definition = METRICS.get(metric)
    return MapLayer(
        scope_code=scope_code,
        scope_name=scope.name,
        level=level,
        metric=metric,
        metric_label=definition.label_zh if definition else metric,
        features=features,
        legend=[(e["colour"], e["label"]) for e in legend_entries(legend)],
        bounds=_bounds(shown),
        unassigned=int(unassigned.sum()) if len(unassigned) else 0,
        crs=crs,
        extra={"cases": int(unit_rows["cases"].sum()) if "cases" in unit_rows else 0},
        legend_notes=_legend_notes(legend, metrics, metric, scope_name=scope.name,
                                   with_city=with_city),
        labels=_labels(shown if level in ("district", "street") else shown.iloc[:0]),
    )


def _legend_notes(legend, metrics, metric: str, *, scope_name: str,  # noqa: ANN001
                  with_city: bool) -> list[str]:
    """The scheme of the classes and the values of the scope (and the city) of the map."""
    from layers.style import format_value

    notes = [legend.scheme_zh] if legend.scheme_zh else []
    for row_type, label in (("parent", scope_name), ("city", "全市"))[:2 if with_city else 1]:
        rows = metrics[metrics["row_type"] == row_type]
        if len(rows) and metric in rows:
            notes.append(f"{label}：{format_value(metric, rows[metric].iloc[0])}")
    return notes


def _labels(units: gpd.GeoDataFrame) -> dict:
    """A point inside each unit with its name (plain text, drawn as a text node)."""
    points = units.geometry.representative_point()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point",
                                         "coordinates": [round(p.x, 5), round(p.y, 5)]},
         "properties": {"name": str(name)}}
        for name, p in zip(units["name"], points, strict=True) if p is not None and not p.is_empty
    ]}


def web_units(store: Store, level: str) -> gpd.GeoDataFrame:
    """Return the current units of a level with their simplified map geometry (cached per version)."""
    engine = store.engine

    def build() -> gpd.GeoDataFrame:
        units = read_units(engine, level=level, web=True)
        missing = units.geometry.isna()
        if missing.any():
            full = read_units(engine, level=level)
            units.loc[missing, "geometry"] = full.loc[missing, "geometry"]
        return units

    return store.cached_on(("web_units", level), lambda: current_boundary_version(engine), build)


def station_features(store: Store, scope_code: str) -> dict:
    """Return the stations inside a scope as GeoJSON points with type, colour and reach radius.

    Names are data (a station file is user input): they travel as plain text properties and
    the browser shows them as text nodes, never as markup.
    """
    frame = station_table(store)
    level = level_of(scope_code)
    if level != "city":
        frame = frame[frame[f"{level}_code"] == scope_code]
    settings = store.settings
    radius = {t: getattr(settings, f"coverage_radius_{t}_m") for t in STATION_TYPES}
    lon, lat = _shift(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float),
                      display_crs(settings.basemap))
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
            "properties": {
                "name": str(name),
                "type": kind,
                "type_zh": STATION_TYPE_ZH.get(kind, kind),
                "colour": STATION_COLOURS.get(kind, "#444"),
                "radius_m": radius.get(kind, 500.0),
                "tip": f"{name}\n{STATION_TYPE_ZH.get(kind, kind)}",
            },
        }
        for name, kind, x, y in zip(frame["name"], frame["station_type"], lon, lat, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def case_point_features(points: CasePoints, *, basemap: str) -> dict:
    """Return case points (or counted cells) as GeoJSON, coloured by the rules' urgency.

    A point carries its case id (plain text) and the path of its case page; a cell its count.
    No personal field is included; tooltips are plain text the browser shows as text.
    """
    items = points.items
    lon, lat = _shift(items["lon"].to_numpy(float), items["lat"].to_numpy(float),
                      display_crs(basemap))
    features = []
    if points.mode == "points":
        for cid, cat, st, u, x, y in zip(items["case_id"], items["category"],
                                         items["status_zh"], items["urgency"], lon, lat,
                                         strict=True):
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
                "properties": {"colour": URGENCY_COLOURS[u], "case_id": str(cid),
                               "href": "/case/" + quote(str(cid), safe=""),
                               "tip": f"{cid} · {cat or '未分类'} · {st}\n点击打开案件"},
            })
    else:
        for n, overdue, soon, u, x, y in zip(items["count"], items["overdue"], items["soon"],
                                             items["urgency"], lon, lat, strict=True):
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(x, 5), round(y, 5)]},
                "properties": {"colour": URGENCY_COLOURS[u], "count": int(n),
                               "tip": f"{int(n):,} 件（超期 {int(overdue):,}，临期 "
                                          f"{int(soon):,}）\n放大到镇街或村居可逐件查看"},
            })
    return {"type": "FeatureCollection", "features": features, "mode": points.mode,
            "total": points.total, "shown": len(features), "unlocated": points.unlocated}


def uncovered_features(store: Store, scope_code: str) -> dict:
    """Return the parts of the scope's children beyond walking reach of any station."""
    from layers.coverage import compute_coverage

    scope = unit_of(store, scope_code)
    level = child_level(scope.level) or scope.level
    coverage = compute_coverage(store, level=level)
    settings = store.settings
    if scope.level != "city":
        codes = set(web_units(store, level).query("parent_code == @scope_code")["code"]) \
            if level != scope.level else {scope_code}
        coverage = coverage[coverage["code"].isin(codes)]
    geoms = gpd.GeoSeries(coverage["uncovered"].to_numpy() if "uncovered" in coverage
                          else coverage.geometry.to_numpy(), crs="EPSG:4326")
    geoms = geoms[~(geoms.isna() | geoms.is_empty)]
    crs = display_crs(settings.basemap)
    if crs != "wgs84":
        geoms = transform_geometry(geoms, source="wgs84", target=crs)
    geoms = geoms.simplify(0.0002)
    return json.loads(gpd.GeoDataFrame(geometry=geoms).to_json(drop_id=True))


def standalone_html(layer: MapLayer, *, stations: dict | None = None, title: str = "",
                    notes: list[str] | None = None) -> str:
    """Render a map layer as a standalone HTML page: same colours, legend and tooltips.

    The page needs no gridgov server and no tile server: Leaflet is inlined and the shapes are
    drawn on a plain background (a user can switch OpenStreetMap on when online). Names are
    data, so nothing from the data is ever put into HTML, script source or a template: the
    layer travels as one JSON block (:func:`json_script`) that the page's own fixed script
    (``dashboard/standalone/map.js``) reads and shows as text nodes. A Content-Security-Policy
    in the page allows exactly its own scripts and styles (by hash), and nothing else.
    ``notes`` (scope, filters, data date) are shown under the legend, as text.
    """
    data = {
        "title": title or layer.scope_name,
        "scope_name": layer.scope_name,
        "metric_label": layer.metric_label,
        "units": layer.features,
        "legend": [[colour, str(label)] for colour, label in layer.legend],
        "bounds": layer.bounds,
        "unassigned": int(layer.unassigned),
        "stations": stations if stations and stations.get("features") else None,
        "notes": [str(line) for line in notes or []],
    }
    leaflet_css, leaflet_js, page_css, page_js = _standalone_assets()
    policy = "; ".join((
        "default-src 'none'",
        "script-src " + " ".join(_csp_hash(s) for s in (leaflet_js, page_js)),
        "style-src " + " ".join(_csp_hash(s) for s in (leaflet_css, page_css)),
        "img-src data: https://tile.openstreetmap.org",
        "base-uri 'none'",
        "form-action 'none'",
    ))
    return "\n".join((
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        "<title>广州市信访网格化治理 · 地图</title>",
        f"<style>{leaflet_css}</style>",
        f"<style>{page_css}</style>",
        "</head>",
        "<body>",
        '<div id="map"></div>',
        '<div id="legend" class="legend"></div>',
        json_script(data, "gridgov-map-data"),
        f"<script>{leaflet_js}</script>",
        f"<script>{page_js}</script>",
        "</body>",
        "</html>",
        "",
    ))


def json_script(value: object, element_id: str) -> str:
    """A ``<script type="application/json">`` block holding ``value``, safe in any HTML page.

    ``<``, ``>`` and ``&`` are written as JSON escapes, so no string can close the element or
    open a comment; the browser never runs the block (it is data, read with ``JSON.parse``).
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # NaN or infinity somewhere: JSON has no such number, null it is
        text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
    text = text.translate(_JSON_SCRIPT_ESCAPES)
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


# --------------------------------------------------------------------------- private helpers

_LEAFLET = Path(__file__).parent / "vendor" / "leaflet"
_STANDALONE = Path(__file__).parent / "standalone"
_JSON_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                        0x2028: "\\u2028", 0x2029: "\\u2029"}


@lru_cache(maxsize=1)
def _standalone_assets() -> tuple[str, str, str, str]:
    """Leaflet's CSS and JS and the page's own CSS and JS, inlined: the page needs no internet."""
    texts = tuple(path.read_text(encoding="utf-8") for path in (
        _LEAFLET / "leaflet.css", _LEAFLET / "leaflet.js", _STANDALONE / "map.css",
        _STANDALONE / "map.js"))
    for text in texts:  # our own fixed files: none may end the element it is inlined in
        if "</script" in text.lower() or "</style" in text.lower():
            raise ValueError("an inlined asset contains a closing tag")
    return texts  # type: ignore[return-value]


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _bounds(units: gpd.GeoDataFrame) -> list[list[float]]:
    if units.empty:
        return [[22.5, 112.9], [24.0, 114.1]]
    west, south, east, north = units.total_bounds
    return [[float(south), float(west)], [float(north), float(east)]]


def _shift(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    if crs == "wgs84" or not len(lon):
        return lon, lat
    x, y = from_wgs84(lon, lat, crs)
    return np.asarray(x, float), np.asarray(y, float)


__all__ = ["BASEMAPS", "MapLayer", "basemap_spec", "case_point_features",
           "display_crs", "json_script", "standalone_html", "station_features", "uncovered_features",
           "unit_layer", "web_units"]
