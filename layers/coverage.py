"""Station coverage (站点覆盖): how much of each unit, and of its people, can walk to a station.

For every unit of a level: the share of its area within reach of any station (a straight-line
buffer whose radius depends on the station type, docs/domain.md §6: 1,000 m for 区信访超市 and
镇街综治中心, 500 m for 村居服务站 and 人民调解工作室, configurable in Settings), the share of
its population within reach, the distance from its population centre to the nearest station of
each type, whether it has the station its level requires (every district a hall, every street a
centre, every village a station), and the uncovered part as WGS-84 geometry for the map.

All areas and distances are measured in EPSG:4547 (:mod:`geo.crs`). Population is only known
per unit, so inside a village it is taken as spread uniformly over the village's area (its
covered population share equals its covered area share) and its population centre is its area
centroid; streets and districts sum the covered population of their villages, which is the
finest population data the store holds. Straight-line reach overstates walking reach; docs/domain.md
§6 prefers network distance where roads are available (not done here).

The result is cached in the store per level until the grid or the stations change (a case
ingest does not rebuild it), because it is much heavier than the case metrics.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import schema
from geo.crs import PROJECTED, WGS84, lonlat_to_xy, to_projected
from geo.errors import GridgovError
from geo.settings import Settings
from geo.store import Store, read_units
from geo.vocab import STATION_TYPES

COVERAGE_COLUMNS = (
    "code",
    "covered_area_share",
    "covered_pop_share",
    "nearest_hall_m",
    "nearest_centre_m",
    "nearest_station_m",
    "nearest_mediation_m",
    "has_required_station",
    "uncovered",
)
REQUIRED_STATION = {"district": "hall", "street": "centre", "village": "station"}
"""The station type each level must have (docs/domain.md §6)."""
BUFFER_QUAD_SEGS = 32
"""Segments per quarter circle: the buffer's area is within 0.05 % of the true circle's."""

def compute_coverage(store: Store, *, level: str) -> gpd.GeoDataFrame:
    """Compute station coverage for every current unit of a level.

    Parameters
    ----------
    store
        The store (grid and stations); its settings give the reach radius of each station
        type (``coverage_radius_*_m``).
    level
        district, street, village or grid (city works too).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per unit, ordered by code, with :data:`COVERAGE_COLUMNS`: covered area and
        population shares (0–1), distances in metres to the nearest station of each type (NaN
        when there is none of that type), ``has_required_station`` (None where the level has no
        requirement) and ``uncovered`` (the active geometry, EPSG:4326; empty when fully
        covered).
    """
    return _cached_coverage(store, level).copy()


# --------------------------------------------------------------------------- pipeline steps


def _radii(settings: Settings) -> tuple[tuple[str, float], ...]:
    return tuple(
        (kind, float(getattr(settings, f"coverage_radius_{kind}_m")))
        for kind in STATION_TYPES
    )


def _cached_coverage(store: Store, level: str) -> gpd.GeoDataFrame:
    radii = _radii(store.settings)
    engine = store.engine
    return store.cached_on(("coverage", level), lambda: _stamp(engine),
                           lambda: _build_coverage(store, level=level, radii=radii))


def _stamp(engine: Engine) -> tuple:
    """What coverage depends on: the boundary version and the station set (its last load)."""
    sql = (
        "SELECT (SELECT max(version) FROM boundary_version), (SELECT max(run_id) FROM station), "
        "(SELECT count(*) FROM station)"
    )
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(sql)).one())


def _build_coverage(
    store: Store, *, level: str, radii: tuple[tuple[str, float], ...]
) -> gpd.GeoDataFrame:
    engine = store.engine
    units = read_units(engine, level=level)
    if units.empty:
        raise GridgovError(
            f"网格中没有“{level}”级单元 / the grid has no units of level {level!r} "
            "(run gridgov init)"
        )
    stations = _read_stations(engine)
    plane = _valid(to_projected(units.geometry).to_numpy())
    sx, sy = lonlat_to_xy(stations["lon"].to_numpy(), stations["lat"].to_numpy())
    points = shapely.points(np.asarray(sx, dtype=float), np.asarray(sy, dtype=float))
    radius = stations["station_type"].map(dict(radii)).to_numpy(dtype=float)
    covered = _covered_parts(plane, shapely.buffer(points, radius, quad_segs=BUFFER_QUAD_SEGS))
    area_share = _safe_share(shapely.area(covered), shapely.area(plane))
    frame = pd.DataFrame({"code": units["code"].to_numpy(), "covered_area_share": area_share})
    frame["covered_pop_share"] = _population_share(store, units, level, area_share)
    centres = _population_centres(plane)
    for kind in STATION_TYPES:
        chosen = (stations["station_type"] == kind).to_numpy()
        frame[f"nearest_{kind}_m"] = _nearest_distance(centres, points[chosen])
    frame["has_required_station"] = _required_station(units, level, stations, plane, points)
    uncovered = _difference(plane, covered)
    back = _valid(gpd.GeoSeries(uncovered, crs=PROJECTED).to_crs(WGS84).to_numpy())
    result = gpd.GeoDataFrame(frame, geometry=back, crs=WGS84)
    return result.rename_geometry("uncovered")


def _read_stations(engine: Engine) -> pd.DataFrame:
    t = schema.station
    query = sa.select(
        t.c.station_type, t.c.lon, t.c.lat, t.c.serves_code, t.c.village_code, t.c.street_code,
        t.c.district_code,
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    columns = ["station_type", "lon", "lat", "serves_code", "village_code", "street_code",
               "district_code"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    return frame


def _covered_parts(units: np.ndarray, buffers: np.ndarray) -> np.ndarray:
    """Intersect each unit with the union of the buffers that reach it."""
    covered = np.array([shapely.Polygon()] * len(units), dtype=object)
    if len(buffers) == 0:
        return covered
    tree = shapely.STRtree(buffers)
    unit_index, buffer_index = tree.query(units, predicate="intersects")
    if len(unit_index) == 0:
        return covered
    order = np.argsort(unit_index, kind="stable")
    unit_index, buffer_index = unit_index[order], buffer_index[order]
    starts = np.flatnonzero(np.r_[True, unit_index[1:] != unit_index[:-1]])
    ends = np.r_[starts[1:], len(unit_index)]
    for start, end in zip(starts, ends, strict=True):
        i = unit_index[start]
        reach = shapely.union_all(buffers[buffer_index[start:end]])
        try:
            covered[i] = shapely.intersection(units[i], reach)
        except shapely.errors.GEOSException:  # near-degenerate edges: snap to a 1 cm grid
            covered[i] = shapely.intersection(units[i], reach, grid_size=0.01)
    return covered


def _valid(geometries: np.ndarray) -> np.ndarray:
    """Repair geometries the projection made invalid (slivers of generated boundaries)."""
    invalid = ~shapely.is_valid(geometries)
    if invalid.any():
        geometries = geometries.copy()
        geometries[invalid] = shapely.make_valid(geometries[invalid], method="structure",
                                                 keep_collapsed=False)
    return geometries


def _difference(units: np.ndarray, covered: np.ndarray) -> np.ndarray:
    try:
        return shapely.difference(units, covered)
    except shapely.errors.GEOSException:
        return shapely.difference(units, covered, grid_size=0.01)


def _safe_share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(whole > 0, np.clip(part / whole, 0.0, 1.0), np.nan)


def _population_share(
    store: Store,
    units: gpd.GeoDataFrame,
    level: str,
    area_share: np.ndarray,
) -> np.ndarray:
    """Covered population share: uniform inside villages, summed from villages above them."""
    if level not in ("city", "district", "street"):
        return area_share
    engine = store.engine
    villages = read_units(engine, level="village", with_geometry=False)
    population = pd.to_numeric(villages["population"], errors="coerce")
    if villages.empty or population.isna().any() or (population <= 0).all():
        return area_share
    village_cov = _cached_village_share(store)
    covered_people = population.to_numpy(float) * village_cov
    ancestor = _ancestor_codes(engine, villages["code"].to_numpy(), level)
    total = pd.Series(population.to_numpy(float)).groupby(ancestor).sum()
    covered = pd.Series(covered_people).groupby(ancestor).sum()
    share = (covered / total).reindex(units["code"].to_numpy())
    return np.where(share.notna(), share.to_numpy(float), area_share)


def _cached_village_share(store: Store) -> np.ndarray:
    return _cached_coverage(store, "village")["covered_area_share"].to_numpy(float)


def _ancestor_codes(engine: Engine, codes: np.ndarray, level: str) -> np.ndarray:
    """Map each village code to its ancestor at ``level`` through the grid's parent links."""
    units = read_units(engine, with_geometry=False)
    parent = dict(zip(units["code"], units["parent_code"], strict=True))
    unit_level = dict(zip(units["code"], units["level"], strict=True))
    out = []
    for code in codes:
        current = code
        while current is not None and unit_level.get(current) != level:
            current = parent.get(current)
        out.append(current)
    return np.asarray(out, dtype=object)


def _population_centres(plane: np.ndarray) -> np.ndarray:
    """Area centroid (uniform population), or a point inside when the centroid falls outside."""
    centroids = shapely.centroid(plane)
    inside = shapely.contains(plane, centroids)
    return np.where(inside, centroids, shapely.point_on_surface(plane))


def _nearest_distance(centres: np.ndarray, stations: np.ndarray) -> np.ndarray:
    if len(stations) == 0:
        return np.full(len(centres), np.nan)
    tree = shapely.STRtree(stations)
    (source, _target), distance = tree.query_nearest(centres, return_distance=True,
                                                     all_matches=False)
    result = np.full(len(centres), np.nan)
    result[source] = distance
    return result


def _required_station(
    units: gpd.GeoDataFrame,
    level: str,
    stations: pd.DataFrame,
    plane: np.ndarray,
    points: np.ndarray,
) -> list[bool | None]:
    """Whether each unit has its required station: one serving it, or one located inside it."""
    kind = REQUIRED_STATION.get(level)
    if kind is None:
        return [None] * len(units)
    chosen = (stations["station_type"] == kind).to_numpy()
    typed = stations[chosen]
    named = set(typed["serves_code"].dropna())
    if f"{level}_code" in typed:
        named |= set(typed[f"{level}_code"].dropna())
    has = np.array(units["code"].isin(named).to_numpy(), dtype=bool)
    if chosen.any():
        inside, _ = shapely.STRtree(points[chosen]).query(plane, predicate="contains")
        has[np.unique(inside)] = True
    return [bool(value) for value in has]
