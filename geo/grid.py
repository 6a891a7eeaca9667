"""The grid model (网格): one table of units for every level, checked and versioned.

A grid is a GeoDataFrame with one row per unit: ``code``, ``name``, ``level``
(city/district/street/village/grid), ``parent_code``, ``population``,
``population_estimated``, ``geometry_source`` (official/generated/imported) and a
MultiPolygon ``geometry`` in WGS-84. Every write goes through :func:`load_units`, which
checks the units first and writes them as a new boundary version in one transaction,
so a grid that fails its checks changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import codes, schema
from geo.bundled import bundled_grid
from geo.crs import area_km2
from geo.errors import CodeError, GridValidationError
from geo.store import bump_version, current_boundary_version, read_units, upgrade_schema
from geo.vocab import LEVEL_NAMES_ZH, LEVELS

TOLERANCE_KM2 = 1e-4
"""Gaps, overlaps and overhangs smaller than this (100 m²) are floating-point noise."""

WEB_TOLERANCE_DEG = {"city": 0.003, "district": 0.001, "street": 0.0008, "village": 0.0006,
                     "grid": 0.0002}
"""Simplification tolerance of the map copy per level (0.0001° ≈ 10 m here)."""
WEB_GRID_SIZE_DEG = 1e-5
"""Coordinates of the map copy are rounded to this (≈ 1 m), enough for any screen."""


@dataclass
class GridReport:
    """What ``gridgov grid check`` prints: counts per level and every problem found."""

    counts: dict[str, int]
    problems: list[str] = field(default_factory=list)
    gaps_km2: float = 0.0
    overlaps_km2: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_units(
    units: gpd.GeoDataFrame,
    *,
    parents: gpd.GeoDataFrame | None = None,
    tolerance_km2: float = TOLERANCE_KM2,
) -> GridReport:
    """Check a set of units and report every problem, not just the first.

    Checks: code format and level, codes that nest in their parent code, parents that
    exist, duplicate codes, invalid or empty polygons, children outside their parent,
    overlapping siblings, and gaps (parent area not covered by its children, in km²).

    Parameters
    ----------
    units
        The units to check (any mix of levels).
    parents
        The rest of the grid as it stands: the units ``units`` nest in (e.g. the current
        districts when importing streets) and the siblings not in ``units``. A parent's
        gaps and overlaps are judged with those siblings' current geometry, so importing
        one street of a district checks it against the district's other streets.

    Returns
    -------
    GridReport
        Counts per level and the list of problems (empty when the grid is sound).
    """
    everything = units if parents is None else pd.concat([parents, units], ignore_index=True)
    everything = everything.drop_duplicates("code", keep="last")
    report = GridReport(counts=units["level"].value_counts().to_dict())
    report.problems += _code_problems(units, set(everything["code"]))
    report.problems += geometry_problems(units)
    valid = everything[polygon_mask(everything)]
    _coverage_problems(valid, report, child_codes=set(units["code"]), tolerance_km2=tolerance_km2)
    return report


def load_units(
    engine: Engine,
    units: gpd.GeoDataFrame,
    *,
    kind: str,
    level: str | None = None,
    note: str | None = None,
    source_file: str | None = None,
    sha256: str | None = None,
    check: bool = True,
) -> int:
    """Write units as a new boundary version (边界版本), in one transaction.

    Units whose code already exists stop being current; all others stay as they are.
    Area (EPSG:4547), the unit kind from its code and the simplified map copy are
    computed here, so every writer of the grid gets them the same way.

    Returns
    -------
    int
        The new boundary version.

    Raises
    ------
    GridValidationError
        When ``check`` is on and the units fail :func:`check_units` (nothing is written).
    """
    units = _normalise(units)
    if check:
        current = read_units(engine) if _has_grid(engine) else None
        parents = None
        if current is not None and len(current):
            parents = current[~current["code"].isin(units["code"])]
        report = check_units(units, parents=parents)
        if not report.ok:
            raise GridValidationError(report.problems)
    rows = _unit_rows(units)
    with engine.begin() as conn:
        version = conn.execute(
            schema.boundary_version.insert()
            .values(created_at=datetime.now(), kind=kind, level=level, note=note,
                    source_file=source_file, sha256=sha256)
            .returning(schema.boundary_version.c.version)
        ).scalar_one()
        conn.execute(
            schema.grid_unit.update()
            .where(schema.grid_unit.c.code.in_(list(units["code"])))
            .values(is_current=False)
        )
        for row in rows:
            row["boundary_version"] = version
        conn.execute(schema.grid_unit.insert(), rows)
        bump_version(conn)
    return version


def check_store(engine: Engine, *, tolerance_km2: float = TOLERANCE_KM2) -> GridReport:
    """Check the store's current grid as a whole (what ``gridgov grid check`` runs)."""
    units = read_units(engine)
    report = check_units(units, tolerance_km2=tolerance_km2)
    for level in ("city", "district", "street", "village"):
        report.counts.setdefault(level, 0)
    if report.counts["city"] != 1:
        report.problems.append(f"应有1个市级单元，实有 {report.counts['city']} 个 / "
                               f"expected 1 city unit, found {report.counts['city']}")
    return report


def web_geometries(units: gpd.GeoDataFrame) -> np.ndarray:
    """Return the simplified map copy of each unit, shared borders kept shared.

    Each level is simplified as one coverage (``shapely.coverage_simplify``), so two
    neighbours still meet on the same line after simplification, then rounded to
    about 1 m.
    """
    out = np.empty(len(units), dtype=object)
    for level, idx in units.groupby("level").indices.items():
        geoms = units.geometry.to_numpy()[idx]
        simplified = shapely.coverage_simplify(geoms, WEB_TOLERANCE_DEG.get(level, 0.0002))
        rounded = shapely.set_precision(simplified, WEB_GRID_SIZE_DEG)
        out[idx] = [_as_multipolygon(g) if not g.is_empty else o for g, o in zip(rounded, geoms)]
    return out


def _has_grid(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(schema.grid_unit)).scalar() > 0


def _normalise(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    units = units.copy()
    if units.crs is None or units.crs.to_epsg() != 4326:
        units = units.to_crs("EPSG:4326") if units.crs is not None else units.set_crs("EPSG:4326")
    units["code"] = units["code"].astype(str)
    units["parent_code"] = units["parent_code"].where(units["parent_code"].notna(), None)
    for col, default in (("population", None), ("population_estimated", False)):
        if col not in units:
            units[col] = default
    units["geometry"] = [_as_multipolygon(g) for g in units.geometry]
    return units


def _unit_rows(units: gpd.GeoDataFrame) -> list[dict]:
    areas = area_km2(units.geometry.to_numpy())
    web = web_geometries(units)
    rows = []
    for i, u in enumerate(units.itertuples(index=False)):
        population = getattr(u, "population", None)
        rows.append(
            {
                "code": u.code,
                "name": u.name,
                "level": u.level,
                "parent_code": None if pd.isna(u.parent_code) else str(u.parent_code),
                "kind": _kind(u.code),
                "geometry": u.geometry,
                "web_geometry": web[i],
                "area_km2": float(areas[i]),
                "population": None if population is None or pd.isna(population) else int(population),
                "population_estimated": bool(u.population_estimated),
                "geometry_source": u.geometry_source,
                "is_current": True,
            }
        )
    return rows


def _kind(code: str) -> str | None:
    try:
        return codes.unit_kind(code)
    except CodeError:
        return None


def _as_multipolygon(geom: shapely.Geometry) -> shapely.Geometry:
    if geom is None or geom.is_empty:
        return geom
    if geom.geom_type == "MultiPolygon":
        return geom
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.MultiPolygon(list(shapely.get_parts(shapely.union_all(parts)))) if parts else geom


def _code_problems(units: gpd.GeoDataFrame, known_codes: set[str]) -> list[str]:
    problems = []
    for code in units.loc[units["code"].duplicated(), "code"].unique():
        problems.append(f"代码重复 {code} / duplicate code {code}")
    for u in units.itertuples(index=False):
        label = f"{u.code} {u.name}"
        try:
            actual = codes.level_of(u.code)
        except CodeError as err:
            problems.append(f"{label}: {err}")
            continue
        if actual != u.level:
            problems.append(f"{label}: 代码为{LEVEL_NAMES_ZH[actual]}级但标为 {u.level} / "
                            f"code is a {actual} code but the unit is marked {u.level}")
            continue
        if u.level == "city":
            continue
        expected_parent = codes.parent_of(u.code)
        if u.parent_code != expected_parent:
            problems.append(f"{label}: 代码与上级 {u.parent_code} 不嵌套 / code does not nest in "
                            f"its parent {u.parent_code} (expected {expected_parent})")
        elif u.parent_code not in known_codes:
            problems.append(f"{label}: 上级单元 {u.parent_code} 不存在 / unknown parent unit "
                            f"{u.parent_code}")
    return problems


def polygon_mask(units: gpd.GeoDataFrame) -> np.ndarray:
    """True where a unit's geometry is a valid, non-empty polygon (the only kind a grid holds)."""
    geoms = units.geometry.to_numpy()
    present = ~shapely.is_missing(geoms)
    ok = np.zeros(len(geoms), dtype=bool)
    types = shapely.get_type_id(geoms[present])
    polygon = np.isin(types, (3, 6))  # Polygon, MultiPolygon
    sub = geoms[present]
    ok_present = polygon & ~shapely.is_empty(sub) & shapely.is_valid(sub)
    ok[np.flatnonzero(present)] = ok_present
    return ok


def geometry_problems(units: gpd.GeoDataFrame) -> list[str]:
    """One bilingual problem per unit whose geometry is missing, empty, not a polygon or invalid."""
    problems = []
    for u in units.itertuples(index=False):
        geom = u.geometry
        if geom is None or geom.is_empty:
            problems.append(f"{u.code} {u.name}: 边界为空 / empty geometry")
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"{u.code} {u.name}: 边界不是面 / geometry is a {geom.geom_type}, "
                            "not a polygon")
        elif not geom.is_valid:
            problems.append(f"{u.code} {u.name}: 边界无效（{shapely.is_valid_reason(geom)}）/ "
                            f"invalid polygon: {shapely.is_valid_reason(geom)}")
    return problems


def _coverage_problems(
    units: gpd.GeoDataFrame,
    report: GridReport,
    *,
    child_codes: set[str],
    tolerance_km2: float,
) -> None:
    """Check that each parent is tiled by its children: inside, no overlaps, no gaps."""
    by_code = units.set_index("code")
    in_check = units["code"].isin(child_codes).to_numpy()
    children = units[in_check & units["parent_code"].isin(by_code.index).to_numpy()]
    for parent_code, group in children.groupby("parent_code"):
        parent = by_code.loc[parent_code]
        parent_geom = parent.geometry
        label = f"{parent_code} {parent['name']}"
        geoms = group.geometry.to_numpy()
        outside = area_km2(shapely.difference(geoms, parent_geom))
        for (code, name), km2 in zip(zip(group["code"], group["name"]), outside):
            if km2 > tolerance_km2:
                report.problems.append(f"{code} {name}: 超出上级 {label} {km2:.4f} km² / "
                                       f"lies {km2:.4f} km² outside its parent")
        # the siblings not being checked count with their current geometry
        siblings = units[~in_check & (units["parent_code"] == parent_code).to_numpy()
                         & units["level"].isin(group["level"].unique()).to_numpy()]
        family = pd.concat([group, siblings], ignore_index=True)
        overlap = _sibling_overlaps(family, tolerance_km2, checked=set(group["code"]))
        for a, b, km2 in overlap:
            report.overlaps_km2 += km2
            report.problems.append(f"{a} {_name(family, a)} 与 {b} {_name(family, b)} 重叠 "
                                   f"{km2:.4f} km² / {a} and {b} overlap by {km2:.4f} km²")
        geoms = family.geometry.to_numpy()
        gap = float(area_km2([shapely.difference(parent_geom, shapely.union_all(geoms))])[0])
        if gap > tolerance_km2:
            report.gaps_km2 += gap
            report.problems.append(f"{label}: 下级单元未覆盖 {gap:.4f} km²（缝隙）/ "
                                   f"children leave a gap of {gap:.4f} km²")


def _name(frame: pd.DataFrame, code: str) -> str:
    names = frame.loc[frame["code"] == code, "name"]
    return str(names.iloc[0]) if len(names) else ""


def _sibling_overlaps(group: gpd.GeoDataFrame, tolerance_km2: float, *,
                      checked: set[str] | None = None) -> list[tuple[str, str, float]]:
    """Overlapping pairs of siblings (at least one of them in ``checked``, when given)."""
    geoms = group.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    if checked is not None:
        code = group["code"].to_numpy()
        keep &= np.isin(code[left], list(checked)) | np.isin(code[right], list(checked))
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    areas = area_km2(shapely.intersection(geoms[left], geoms[right]))
    code = group["code"].to_numpy()
    return [(code[a], code[b], float(km2)) for a, b, km2 in zip(left, right, areas)
            if km2 > tolerance_km2]


def init_store(engine: Engine) -> InitResult:
    """Create or migrate the schema and load the bundled Guangzhou grid once.

    Running it again is harmless: the schema is already current and a store that holds
    a grid keeps it (including any imported boundaries).

    The bundled grid is not put through :func:`check_units` here: it is package data, the
    same on every machine, and tests/geo/test_bundled.py runs ``gridgov grid check`` on the
    store this loads (clean: no gap, no overlap, every code nested). Checking it again cost
    every ``gridgov init`` and ``gridgov demo`` about 5 of its 7 seconds; an imported grid
    (:func:`load_units` from ``gridgov grid import``) is still checked before it is written.
    """
    upgrade_schema(engine)
    if _has_grid(engine):
        return InitResult(loaded=False, version=current_boundary_version(engine))
    version = load_units(engine, bundled_grid(), kind="bundled", check=False,
                         note="广州市 2023 区划代码；区界为真实边界，镇街与村居为示意边界")
    return InitResult(loaded=True, version=version)


@dataclass(frozen=True)
class InitResult:
    """What ``gridgov init`` did: whether it loaded the grid, and the current boundary version."""

    loaded: bool
    version: int


def web_copy_sizes(engine: Engine) -> pd.DataFrame:
    """Report the map copy per level: vertices before and after, and its GeoJSON size.

    Returns
    -------
    DataFrame
        One row per level: units, vertices, web_vertices, web_geojson_bytes.
    """
    rows = []
    for level in LEVELS:
        full = read_units(engine, level=level)
        if full.empty:
            continue
        web = read_units(engine, level=level, web=True)
        rows.append({
            "level": level,
            "units": len(full),
            "vertices": int(shapely.get_num_coordinates(full.geometry.to_numpy()).sum()),
            "web_vertices": int(shapely.get_num_coordinates(web.geometry.to_numpy()).sum()),
            "web_geojson_bytes": len(web[["code", "geometry"]].to_json(drop_id=True).encode()),
        })
    return pd.DataFrame(rows)
